"""Choosing the LLM provider from settings.

Tools never construct a provider themselves; they call ``get_provider()`` and
use the ``LLMProvider`` contract of ``base.py``. Which one they get is
configuration:

    LLM_PROVIDER         "auto" (default) | "anthropic" | "offline";
                         auto = anthropic when ANTHROPIC_API_KEY is set, else offline
    ANTHROPIC_API_KEY    the key ("" = none)
    ANTHROPIC_BASE_URL   None/"" = the SDK's default (a fake server in tests)
    ANTHROPIC_MODEL      default ``DEFAULT_MODEL``
    ANTHROPIC_TIMEOUT_S  seconds without a byte before a call counts as stalled
    OFFLINE_DELAY_S      pause between offline pieces, for demos

Every setting is optional (read with a default), so this works before the
project's settings define them, and even with Django settings not configured
at all (then: offline). Anthropic providers are cached per configuration so
that calls reuse the SDK client's pooled HTTPS connections.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from .base import LLMProvider, LLMRequest, TextStream, Usage
from .offline import OfflineProvider

logger = logging.getLogger(__name__)

# The newest Sonnet in anthropic 2.12's model list; claude-sonnet-4-5 (and the
# older 4-20250514) are on the SDK's deprecated list.
DEFAULT_MODEL = "claude-sonnet-5-5"
DEFAULT_TIMEOUT_S = 60.0
PROVIDER_CHOICES = ("auto", "anthropic", "offline")

__all__ = [
    "DEFAULT_MODEL", "LLMProvider", "LLMRequest", "LLMSettings",
    "OfflineProvider", "TextStream", "Usage", "get_provider", "provider_from_settings",
]


@dataclass(frozen=True)
class LLMSettings:
    """The provider-related settings, with their defaults."""

    provider: str = "auto"
    api_key: str = ""
    base_url: str | None = None
    model: str = DEFAULT_MODEL
    timeout_s: float = DEFAULT_TIMEOUT_S
    offline_delay_s: float = 0.0

    @classmethod
    def from_django(cls) -> LLMSettings:
        """Read Django settings; any missing one keeps its default."""
        return cls(
            provider=str(_setting("LLM_PROVIDER", cls.provider) or cls.provider).lower(),
            api_key=str(_setting("ANTHROPIC_API_KEY", "") or ""),
            base_url=_setting("ANTHROPIC_BASE_URL", None) or None,
            model=str(_setting("ANTHROPIC_MODEL", "") or cls.model),
            timeout_s=float(_setting("ANTHROPIC_TIMEOUT_S", None) or cls.timeout_s),
            offline_delay_s=float(_setting("OFFLINE_DELAY_S", None) or 0.0),
        )


def _setting(name: str, default: Any) -> Any:
    from django.conf import settings

    try:
        return getattr(settings, name, default)
    except ImproperlyConfigured:
        # No settings module at all (a bare script, a test run without Django).
        return default


def get_provider() -> LLMProvider:
    """The provider the current settings ask for."""
    return provider_from_settings(LLMSettings.from_django())


def provider_from_settings(config: LLMSettings) -> LLMProvider:
    """Resolve "auto" and build (or reuse) the chosen provider."""
    if config.provider not in PROVIDER_CHOICES:
        raise ImproperlyConfigured(
            f"LLM_PROVIDER must be one of {', '.join(PROVIDER_CHOICES)}; got {config.provider!r}.")
    use_anthropic = config.provider == "anthropic" or (config.provider == "auto" and config.api_key)
    if not use_anthropic:
        return OfflineProvider(delay_s=config.offline_delay_s)
    if not config.api_key:
        raise ImproperlyConfigured("LLM_PROVIDER is 'anthropic' but ANTHROPIC_API_KEY is empty.")
    return _anthropic_provider(config.api_key, config.base_url, config.model, config.timeout_s)


@lru_cache(maxsize=8)
def _anthropic_provider(api_key: str, base_url: str | None, model: str, timeout_s: float) -> LLMProvider:
    # One SDK client per configuration: its connection pool is reused across calls.
    # Imported here: the SDK takes seconds to import, which every `run_tool`
    # process (one per Gantz call) would pay even on the offline provider.
    from .anthropic import AnthropicProvider

    logger.info("Using Anthropic model %s (base URL: %s)", model, base_url or "SDK default")
    return AnthropicProvider(api_key=api_key, base_url=base_url, model=model, timeout_s=timeout_s)
