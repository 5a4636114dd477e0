"""The settings the Gantz executors read, each with one documented default.

They live in ``settings.MCP_CONFIG`` (``config/settings.py``)::

    SCRIPT_KILL_GRACE_S      5.0        seconds between SIGTERM and SIGKILL when a script is stopped
    SCRIPT_STDERR_MAX_BYTES  1 MiB      stderr kept per run (appended to the output at the end)
    HTTP_TOOL_MAX_BYTES      2 MiB      response body read per http tool call
    DEFAULT_TIMEOUT          60         seconds, for an http tool whose file gives no timeout

Without configured Django settings (a bare script, a test subprocess) the
defaults apply.
"""
from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {
    "SCRIPT_KILL_GRACE_S": 5.0,
    "SCRIPT_STDERR_MAX_BYTES": 1024 * 1024,
    "HTTP_TOOL_MAX_BYTES": 2 * 1024 * 1024,
    "DEFAULT_TIMEOUT": 60,
}


def setting(name: str) -> Any:
    """``settings.MCP_CONFIG[name]``, or its default here."""
    from django.conf import settings

    try:
        config = getattr(settings, "MCP_CONFIG", {})
    except ImproperlyConfigured:
        config = {}
    return config.get(name, DEFAULTS[name])


def kill_grace_s() -> float:
    return float(setting("SCRIPT_KILL_GRACE_S"))


def stderr_max_bytes() -> int:
    return int(setting("SCRIPT_STDERR_MAX_BYTES"))


def http_max_bytes() -> int:
    return int(setting("HTTP_TOOL_MAX_BYTES"))


def default_timeout_s() -> float:
    return float(setting("DEFAULT_TIMEOUT"))
