"""What an execution event looks like, and where it is sent: one place for both.

Every execution event of docs/protocol.md is built here, and every group name
comes from here::

    status_event("running", attempt=1)       # {"type": "execution.status", "status": "running", "attempt": 1}
    execution_group(execution_id)             # the channel-layer group of one execution
    MONITOR_GROUP                             # every execution's status and terminal events

An event gets its ``seq`` (and ``epoch``) from the event log when it is
appended (``log.py``); constructors never set them. Terminal events carry
``usage`` (tokens the provider reported, also when the run failed or was
cancelled) and the row's final fields are derived from them alone
(``mcp_tools/outcomes.py``).
"""

from __future__ import annotations

from typing import Any

Event = dict[str, Any]

TERMINAL_TYPES = frozenset({"execution.completed", "execution.failed", "execution.cancelled"})
# Sent to the monitor group: status changes and terminal events, never deltas.
MONITOR_TYPES = frozenset({"execution.status"}) | TERMINAL_TYPES
MONITOR_GROUP = "monitor"


def execution_group(execution_id: str) -> str:
    """The channel-layer group every follower of one execution joins."""
    return f"execution.{execution_id}"


def status_event(status: str, **extra: Any) -> Event:
    return {"type": "execution.status", "status": status, **extra}


def delta_event(text: str) -> Event:
    return {"type": "execution.delta", "text": text}


def _usage(input_tokens: int, output_tokens: int) -> dict[str, int]:
    return {"input_tokens": input_tokens, "output_tokens": output_tokens}


def completed_event(
    result: dict[str, Any],
    *,
    duration_ms: int,
    cached: bool,
    attempt: int,
    input_tokens: int = 0,
    output_tokens: int = 0,
) -> Event:
    return {
        "type": "execution.completed",
        "status": "completed",
        "result": result,
        "duration_ms": duration_ms,
        "cached": cached,
        "attempt": attempt,
        "usage": _usage(input_tokens, output_tokens),
    }


def failed_event(
    code: str,
    message: str,
    *,
    duration_ms: int,
    attempt: int,
    input_tokens: int = 0,
    output_tokens: int = 0,
    result: dict[str, Any] | None = None,
) -> Event:
    """``result``: what a failed run had produced (a script's output and exit code), kept on the row."""
    event: Event = {
        "type": "execution.failed",
        "status": "failed",
        "error": {"code": code, "message": message},
        "duration_ms": duration_ms,
        "attempt": attempt,
        "usage": _usage(input_tokens, output_tokens),
    }
    if result is not None:
        event["result"] = result
    return event


def cancelled_event(*, duration_ms: int, attempt: int, input_tokens: int = 0, output_tokens: int = 0) -> Event:
    return {
        "type": "execution.cancelled",
        "status": "cancelled",
        "duration_ms": duration_ms,
        "attempt": attempt,
        "usage": _usage(input_tokens, output_tokens),
    }


def is_terminal(event: Event) -> bool:
    return event["type"] in TERMINAL_TYPES
