"""How executions and service errors look to an MCP client: ``CallToolResult``.

The MCP layer's one translation point (the WebSocket and REST layers have
theirs). A completed execution answers with

* ``structuredContent``: the tool's result object, which conforms to the
  tool's ``outputSchema`` (catalog.py);
* ``content``: the text the tool streamed (its ``output_field``) as a text
  block — what a model reads — or the result as JSON when it streamed none,
  followed by every MCP content block the result holds as a field value
  (an image, audio, an embedded resource: ``{"type": "image", ...}``).

A tool's own failure (``execution.failed``, or a refusal before it ran) is a
*tool error* (``isError: true``) carrying PROTOCOL.md's error code, so the
model sees it and can correct itself. Our own fault (``internal_error``) is a
JSON-RPC error instead (-32603), as MCP asks for failures that are not the
tool's answer; under the Tasks extension that is what makes a task
``failed`` rather than ``completed``. ``_meta.execution_id`` names the
execution::

    {"isError": true,
     "structuredContent": {"error": {"code": "invalid_parameters", "message": "...", "details": [...]}},
     "content": [{"type": "text", "text": "invalid_parameters: ..."}]}
"""

from __future__ import annotations

import json
from typing import Any

import mcp_types as types
from mcp.shared.exceptions import MCPError
from pydantic import TypeAdapter, ValidationError

from mcp_tools.errors import ServiceError
from mcp_tools.events import Event

CANCELLED_ERROR = {"code": "cancelled", "message": "The execution was cancelled."}
# Execution error codes that are the service's fault, not the tool's answer.
PROTOCOL_ERROR_CODES = frozenset({"internal_error"})

_CONTENT_BLOCK = TypeAdapter(types.ContentBlock)
_MEDIA_TYPES = frozenset({"image", "audio", "resource", "resource_link"})


def _meta(execution_id: str | None) -> dict[str, Any] | None:
    return {"execution_id": execution_id} if execution_id else None


def media_blocks(result: dict[str, Any]) -> list[types.ContentBlock]:
    """The MCP content blocks a result holds as field values, in field order."""
    blocks = []
    for value in result.values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict) and item.get("type") in _MEDIA_TYPES:
                try:
                    blocks.append(_CONTENT_BLOCK.validate_python(item))
                except ValidationError:
                    continue
    return blocks


def completed_result(
    result: dict[str, Any], *, output_field: str, execution_id: str | None = None
) -> types.CallToolResult:
    text = result.get(output_field)
    if not isinstance(text, str) or not text:
        text = json.dumps(result, ensure_ascii=False)
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text), *media_blocks(result)],
        structured_content=result,
        _meta=_meta(execution_id),
    )


def error_result(error: dict[str, Any], *, execution_id: str | None = None) -> types.CallToolResult:
    text = f"{error.get('code', 'error')}: {error.get('message', '')}"
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)],
        structured_content={"error": error},
        is_error=True,
        _meta=_meta(execution_id),
    )


def service_error_result(exc: ServiceError) -> types.CallToolResult:
    """Refused before an execution existed: unknown tool, invalid parameters, rate limited."""
    return error_result(exc.as_dict())


def protocol_error(error: dict[str, Any], *, execution_id: str | None = None) -> MCPError:
    return MCPError(
        code=types.INTERNAL_ERROR,
        message=error.get("message") or "Internal error",
        data={"code": error.get("code", "internal_error"), "execution_id": execution_id},
    )


def terminal_result(event: Event, *, output_field: str) -> types.CallToolResult:
    """The answer for an execution's terminal event; raises MCPError for our own failures."""
    execution_id = event.get("execution_id")
    if event["type"] == "execution.completed":
        return completed_result(event["result"], output_field=output_field, execution_id=execution_id)
    if event["type"] == "execution.failed":
        if event["error"].get("code") in PROTOCOL_ERROR_CODES:
            raise protocol_error(event["error"], execution_id=execution_id)
        return error_result(event["error"], execution_id=execution_id)
    return error_result(CANCELLED_ERROR, execution_id=execution_id)
