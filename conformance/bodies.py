"""The conformance suite's fixture tools: their bodies.

Each is a plain function ``run(parameters, ctx) -> result``; ``tools.py``
registers it with the project's ``@tool`` API, so the engine runs it like any
tool (a ``ToolExecution`` row, events, stats), in the tools' thread pool with
a ``SyncToolContext``. Their schemas and task support are in
``definitions.py``; the text a tool streams is its result's ``text`` field.

The names and the answers are the suite's (``@modelcontextprotocol/conformance``,
``examples/servers/typescript/everything-server.ts`` upstream).
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from mcp_tools.errors import ExecutionStopped, PermanentToolError, ToolError
from mcp_tools.mcp import inputs
from mcp_tools.models import ToolExecution
from mcp_tools.tools import SyncToolContext as ToolContext

PNG_1PX = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
WAV_EMPTY = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA="
# How often a waiting fixture looks whether its execution was cancelled.
TICK_S = 0.1


def _say(ctx: ToolContext, text: str) -> dict[str, Any]:
    """Stream ``text`` and return it as the result."""
    ctx.emit(text)
    return {"text": text}


def _cancelled(execution_id: str) -> bool:
    return ToolExecution.objects.filter(pk=execution_id, status=ToolExecution.Status.CANCELLED).exists()


def _wait(ctx: ToolContext, seconds: float) -> None:
    """Sleep ``seconds``, stopping as soon as the execution is cancelled."""
    waiter = threading.Event()
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        if _cancelled(ctx.execution_id):
            raise ExecutionStopped()
        ctx.check()
        waiter.wait(min(TICK_S, left))


def simple_text(parameters: dict, ctx: ToolContext) -> dict:
    return _say(ctx, "This is a simple text response for testing.")


def image_content(parameters: dict, ctx: ToolContext) -> dict:
    return {**_say(ctx, "A 1x1 PNG image."), "image": {"type": "image", "data": PNG_1PX, "mimeType": "image/png"}}


def audio_content(parameters: dict, ctx: ToolContext) -> dict:
    return {
        **_say(ctx, "A short WAV recording."),
        "audio": {"type": "audio", "data": WAV_EMPTY, "mimeType": "audio/wav"},
    }


def embedded_resource(parameters: dict, ctx: ToolContext) -> dict:
    return {
        **_say(ctx, "An embedded resource."),
        "resource": {
            "type": "resource",
            "resource": {
                "uri": "test://embedded-resource",
                "mimeType": "text/plain",
                "text": "This is an embedded resource content.",
            },
        },
    }


def multiple_content_types(parameters: dict, ctx: ToolContext) -> dict:
    return {
        **_say(ctx, "Multiple content types test:"),
        "image": {"type": "image", "data": PNG_1PX, "mimeType": "image/png"},
        "resource": {
            "type": "resource",
            "resource": {
                "uri": "test://mixed-content-resource",
                "mimeType": "application/json",
                "text": json.dumps({"test": "data", "value": 123}),
            },
        },
    }


def with_progress(parameters: dict, ctx: ToolContext) -> dict:
    pieces = [f"Completed step {step} of 100\n" for step in (0, 50, 100)]
    for piece in pieces:
        _say(ctx, piece)
        _wait(ctx, 0.25)  # well past the coalescing window: three pieces, three notifications
    return {"text": "".join(pieces)}


def error_handling(parameters: dict, ctx: ToolContext) -> dict:
    raise PermanentToolError("This tool intentionally returns an error for testing", code="tool_error")


def greet(parameters: dict, ctx: ToolContext) -> dict:
    return _say(ctx, f"Hello, {parameters.get('name', 'World')}!")


def greet_region(parameters: dict, ctx: ToolContext) -> dict:
    return _say(ctx, f"Hello, {parameters['region']}!")


def slow_compute(parameters: dict, ctx: ToolContext) -> dict:
    seconds = float(parameters.get("seconds", 1))
    _say(ctx, f"Computing {parameters.get('label', '')} for {seconds:g}s... ")
    _wait(ctx, seconds)
    return {"text": f"Computing {parameters.get('label', '')} for {seconds:g}s... done."}


def failing_job(parameters: dict, ctx: ToolContext) -> dict:
    _wait(ctx, 1)
    raise PermanentToolError("The job failed, as this fixture always does.", code="tool_error")


def protocol_error_job(parameters: dict, ctx: ToolContext) -> dict:
    # An unexpected exception: the engine records internal_error, which MCP answers as a JSON-RPC error.
    raise RuntimeError("protocol_error_job crashes on purpose")


def _confirmed(answer: dict[str, Any]) -> bool:
    return answer.get("action") == "accept" and bool((answer.get("content") or {}).get("confirm", True))


def _elicit(message: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "method": "elicitation/create",
        "params": {
            "mode": "form",
            "message": message,
            "requestedSchema": {"type": "object", "properties": properties, "required": list(properties)},
        },
    }


def confirm_delete(parameters: dict, ctx: ToolContext) -> dict:
    filename = parameters["filename"]
    try:
        answers = inputs.ask(
            ctx.execution_id, {"confirm": _elicit(f"Delete {filename}?", {"confirm": {"type": "boolean"}})}
        )
    except inputs.InputNotAnswered:
        raise ExecutionStopped() from None
    verdict = "Deleted" if _confirmed(answers["confirm"]) else "Kept"
    return _say(ctx, f"{verdict} {filename}.")


def multi_input(parameters: dict, ctx: ToolContext) -> dict:
    try:
        answers = inputs.ask(
            ctx.execution_id,
            {
                "name": _elicit("Your name?", {"name": {"type": "string"}}),
                "confirm": _elicit("Go ahead?", {"confirm": {"type": "boolean"}}),
            },
        )
    except inputs.InputNotAnswered:
        raise ExecutionStopped() from None
    names = [str((answer.get("content") or {}).get("name", "")) for answer in answers.values()]
    return _say(ctx, f"Got {len(answers)} answers ({', '.join(n for n in names if n)}).")


def echo(parameters: dict, ctx: ToolContext) -> dict:
    """The final round of a multi-round-trip fixture: the answers gathered became its parameters."""
    text = parameters.get("message")
    if not isinstance(text, str):
        raise ToolError("Nothing to say.", code="invalid_parameters")
    return _say(ctx, text)
