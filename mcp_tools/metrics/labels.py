"""Label values, bounded: what may become a time series, and what is folded into ``other``.

Every distinct label value is a time series in Prometheus, kept for months.
So values come from closed sets: tool names (rows of the Tool table, which
administrators write), statuses, and the two below that code outside this
project can influence::

    error_code_label("fetch_timeout")        # "fetch_timeout"
    error_code_label("Not found: /x")        # "other": not code-shaped (free text, ids)
    model_label({"result": {"model": "claude-sonnet-5-5-20261101"}})   # kept: the configured model's version

An error code must look like one (``snake_case``, at most 48 characters) and
a process keeps at most ``MAX_ERROR_CODES`` of them; a model must be the
configured one (or a dated version of it, ``<model>-YYYYMMDD``) or ``offline``.
"""

from __future__ import annotations

import re
import threading
from typing import Any

OTHER = "other"
OFFLINE_MODEL = "offline"
MAX_ERROR_CODES = 100
CODE_SHAPE = re.compile(r"[a-z][a-z0-9_]{0,47}")
# What follows the configured model's name in a dated version of it ("-20261101").
DATED = re.compile(r"-\d{8}")

_codes: set[str] = set()
_codes_lock = threading.Lock()


def error_code_label(code: Any) -> str:
    """``code`` if it is code-shaped and among the first ``MAX_ERROR_CODES`` seen here, else ``other``."""
    if not isinstance(code, str) or not CODE_SHAPE.fullmatch(code):
        return OTHER
    with _codes_lock:
        if code not in _codes:
            if len(_codes) >= MAX_ERROR_CODES:
                return OTHER
            _codes.add(code)
    return code


def configured_model() -> str:
    """The model this deployment's provider uses (as ``providers.provider_from_settings`` resolves "auto")."""
    from ..providers import LLMSettings

    config = LLMSettings.from_django()
    uses_anthropic = config.provider == "anthropic" or (config.provider == "auto" and bool(config.api_key))
    return config.model if uses_anthropic else OFFLINE_MODEL


def model_label(event: dict[str, Any]) -> str:
    """The model of a terminal event: the one its result reports, else the configured one (a failed or
    cancelled run has no result, but the provider it called is the configured one)."""
    result = event.get("result")
    reported = result.get("model") if isinstance(result, dict) else None
    configured = configured_model()
    if not isinstance(reported, str) or not reported:
        return configured
    dated = reported.startswith(configured) and DATED.fullmatch(reported[len(configured) :])
    if reported in (configured, OFFLINE_MODEL) or dated:
        return reported
    return OTHER
