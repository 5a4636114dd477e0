"""The settings the Gantz executors read, from ``settings.MCP_CONFIG``.

Their defaults and environment variables are in ``config/settings.py``, the
one place for every default (README, "Settings"):

    SCRIPT_KILL_GRACE_S      seconds between SIGTERM and SIGKILL when a script is stopped
    SCRIPT_STDERR_MAX_BYTES  stderr kept per run (appended to the output at the end)
    HTTP_TOOL_MAX_BYTES      response body read per http tool call
    DEFAULT_TIMEOUT          seconds, for an http tool whose file gives no timeout
"""

from __future__ import annotations

from django.conf import settings


def kill_grace_s() -> float:
    return float(settings.MCP_CONFIG["SCRIPT_KILL_GRACE_S"])


def stderr_max_bytes() -> int:
    return int(settings.MCP_CONFIG["SCRIPT_STDERR_MAX_BYTES"])


def http_max_bytes() -> int:
    return int(settings.MCP_CONFIG["HTTP_TOOL_MAX_BYTES"])


def default_timeout_s() -> float:
    return float(settings.MCP_CONFIG["DEFAULT_TIMEOUT"])
