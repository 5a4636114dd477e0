"""Choosing the LLM provider from settings.

Tools never construct a provider themselves; they call ``get_provider()`` and
use the ``LLMProvider`` contract of ``base.py``. Which one they get is
configuration (config/settings.py holds every default)::

    LLM_PROVIDER         "auto" | "anthropic" | "offline";
                         auto = anthropic when ANTHROPIC_API_KEY is set, else offline
    ANTHROPIC_API_KEY    the key ("" = none)
    ANTHROPIC_BASE_URL   "" = the SDK's default (a fake server in tests)
    ANTHROPIC_MODEL      the model
    ANTHROPIC_TIMEOUT_S  seconds without a byte before a call counts as stalled
    OFFLINE_DELAY_S      pause between offline pieces, for demos

An Anthropic provider is kept per configuration and per event loop, so
calls reuse the SDK client's pooled connections, and a new loop (a new
engine) never touches connections made on an old one.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .base import LLMProvider, LLMRequest, TextStream, Usage
from .offline import OfflineProvider

logger = logging.getLogger(__name__)

PROVIDER_CHOICES = ("auto", "anthropic", "offline")

__all__ = [
    "LLMProvider",
    "LLMRequest",
    "LLMSettings",
    "OfflineProvider",
    "TextStream",
    "Usage",
    "get_provider",
    "provider_from_settings",
]


@dataclass(frozen=True)
class LLMSettings:
    """The provider-related settings."""

    provider: str
    api_key: str
    base_url: str | None
    model: str
    timeout_s: float
    offline_delay_s: float = 0.0

    @classmethod
    def from_django(cls) -> LLMSettings:
        return cls(
            provider=str(settings.LLM_PROVIDER).lower(),
            api_key=settings.ANTHROPIC_API_KEY,
            base_url=settings.ANTHROPIC_BASE_URL or None,
            model=settings.ANTHROPIC_MODEL,
            timeout_s=float(settings.ANTHROPIC_TIMEOUT_S),
            offline_delay_s=float(settings.OFFLINE_DELAY_S),
        )


def get_provider() -> LLMProvider:
    """The provider the current settings ask for."""
    return provider_from_settings(LLMSettings.from_django())


def provider_from_settings(config: LLMSettings) -> LLMProvider:
    """Resolve "auto" and build (or reuse) the chosen provider."""
    if config.provider not in PROVIDER_CHOICES:
        raise ImproperlyConfigured(
            f"LLM_PROVIDER must be one of {', '.join(PROVIDER_CHOICES)}; got {config.provider!r}."
        )
    use_anthropic = config.provider == "anthropic" or (config.provider == "auto" and config.api_key)
    if not use_anthropic:
        return OfflineProvider(delay_s=config.offline_delay_s)
    if not config.api_key:
        raise ImproperlyConfigured("LLM_PROVIDER is 'anthropic' but ANTHROPIC_API_KEY is empty.")
    return _anthropic_provider(config)


_providers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_without_loop: dict[LLMSettings, LLMProvider] = {}


def _anthropic_provider(config: LLMSettings) -> LLMProvider:
    try:
        per_config = _providers.setdefault(asyncio.get_running_loop(), {})
    except RuntimeError:
        per_config = _without_loop
    provider = per_config.get(config)
    if provider is None:
        # Imported here: the SDK takes seconds to import, which a `run_tool`
        # process (one per Gantz call) would pay even on the offline provider.
        from .anthropic import AnthropicProvider

        logger.info("Using Anthropic model %s (base URL: %s)", config.model, config.base_url or "SDK default")
        provider = per_config[config] = AnthropicProvider(
            api_key=config.api_key, base_url=config.base_url, model=config.model, timeout_s=config.timeout_s
        )
    return provider
