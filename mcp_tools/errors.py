"""One error hierarchy for every entry point.

Each class declares the machine-readable ``code`` of PROTOCOL.md (or of an
execution's ``error.code``). The WebSocket, REST and MCP layers each translate
``ServiceError`` in exactly one place::

    ServiceError
    ├── InvalidMessage        invalid_message
    ├── UnknownTool           unknown_tool
    ├── InvalidParameters     invalid_parameters   (.details: list of problems)
    ├── NotFound              not_found
    ├── RateLimited           rate_limited         (.retry_after: seconds)
    ├── IdempotencyConflict   idempotency_conflict (a key reused for another request)
    ├── QueueUnavailable      internal_error       (.execution: recorded, then failed queue_unavailable)
    └── ToolError             raised while a tool runs; ends the execution
        ├── PermanentToolError    fail at once (fetch_failed, unsupported_content, llm_error, ...)
        │   └── ExecutionTimeout  timeout
        └── TransientToolError    retried with backoff (llm_unavailable, fetch_timeout, ...)
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    code = "internal_error"
    default_message = "Internal error."

    def __init__(self, message: str | None = None, *, details: Any = None) -> None:
        self.message = message or self.default_message
        self.details = details
        super().__init__(self.message)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            data["details"] = self.details
        return data


class InvalidMessage(ServiceError):
    code = "invalid_message"
    default_message = "The message is not valid."


class UnknownTool(ServiceError):
    code = "unknown_tool"
    default_message = "No active tool has that name."


class InvalidParameters(ServiceError):
    code = "invalid_parameters"
    default_message = "The parameters do not match the tool's schema."


class NotFound(ServiceError):
    code = "not_found"
    default_message = "No such execution."


class RateLimited(ServiceError):
    code = "rate_limited"
    default_message = "Too many executions; try again later."

    def __init__(self, message: str | None = None, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "retry_after": self.retry_after}


class IdempotencyConflict(ServiceError):
    code = "idempotency_conflict"
    default_message = "The idempotency key was already used for another request."


class QueueUnavailable(ServiceError):
    """The execution was recorded, but the task queue refused it: it has failed (``queue_unavailable``)."""

    code = "internal_error"
    default_message = (
        "The task queue is unavailable: the execution was recorded and has failed (queue_unavailable). Retry shortly."
    )

    def __init__(self, execution: Any) -> None:
        super().__init__()
        self.execution = execution


class ToolError(ServiceError):
    """Raised while a tool runs. ``code`` ends up in ``execution.failed``."""

    code = "tool_error"
    default_message = "The tool failed."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        retry_after: float | None = None,
        result: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        if code:
            self.code = code
        self.retry_after = retry_after
        # What a failed run produced before it failed (e.g. {"output": ..., "exit_code": 3}),
        # kept on the execution so the user sees it.
        self.result = result


class PermanentToolError(ToolError):
    """Retrying would not help (bad input, a page that is not text, a 4xx)."""


class ExecutionTimeout(PermanentToolError):
    code = "timeout"
    default_message = "The tool ran past its time limit."


class TransientToolError(ToolError):
    """Worth another attempt (overloaded, rate-limited, dropped stream, timeout)."""


class ExecutionStopped(Exception):
    """Not an error: the run must stop quietly (cancelled, out of time, ended elsewhere, given up).

    Raised by a tool's context (``ctx.emit``, ``ctx.check``); the engine ends
    the execution the way the reason says."""
