"""How executions and service errors look to an MCP client: ``CallToolResult``.

The MCP layer's one translation point (the WebSocket and REST layers have
theirs). A tool's result is returned twice, as MCP suggests for structured
output: as ``structuredContent`` (the result object itself) and as one text
block holding the same object as JSON, for clients that only read text.
Failures are *tool errors* (``isError: true``), not JSON-RPC errors, so the
model sees them and can correct itself; they carry PROTOCOL.md's error codes.
A result that comes from an execution names it in ``_meta.execution_id``, so a
client can follow or look up the same execution over WebSocket or REST::

    {"isError": true,
     "structuredContent": {"error": {"code": "invalid_parameters", "message": "...", "details": [...]}},
     "content": [{"type": "text", "text": "{\"error\": {...}}"}]}
"""
from __future__ import annotations

import json
from typing import Any

import mcp_types as types

from mcp_tools.errors import ServiceError
from mcp_tools.events import Event

CANCELLED_ERROR = {"code": "cancelled", "message": "The execution was cancelled."}


def json_result(payload: dict[str, Any], *, is_error: bool = False,
                execution_id: str | None = None) -> types.CallToolResult:
    text = json.dumps(payload, ensure_ascii=False)
    meta = {"execution_id": execution_id} if execution_id else None
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)],
                                structured_content=payload, is_error=is_error, _meta=meta)


def error_result(error: dict[str, Any], *, execution_id: str | None = None) -> types.CallToolResult:
    return json_result({"error": error}, is_error=True, execution_id=execution_id)


def service_error_result(exc: ServiceError) -> types.CallToolResult:
    """Refused before an execution existed: unknown tool, invalid parameters, rate limited."""
    return error_result(exc.as_dict())


def terminal_result(event: Event) -> types.CallToolResult:
    """The answer for an execution's terminal event (completed, failed or cancelled)."""
    execution_id = event.get("execution_id")
    if event["type"] == "execution.completed":
        return json_result(event["result"], execution_id=execution_id)
    if event["type"] == "execution.failed":
        return error_result(event["error"], execution_id=execution_id)
    return error_result(CANCELLED_ERROR, execution_id=execution_id)
