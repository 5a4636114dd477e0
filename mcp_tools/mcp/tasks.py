"""The Tasks extension (``io.modelcontextprotocol/tasks``, SEP-2663) on ``ToolExecution``.

A task *is* an execution: its ``taskId`` is the execution id, its state is
read from the row and the event log, ``tasks/cancel`` is
``services.execution_cancel`` (the Claude stream is closed, the worker stops)::

    tools/call (client declared the extension)
                 ─▶ {"resultType": "task", "taskId": <execution id>, "status": "working", ...}
    tasks/get    ─▶ working (+ the text so far) | input_required (+ inputRequests)
                    | completed (+ result) | failed | cancelled
    tasks/update ─▶ answers a waiting tool's inputRequests (inputs.py)
    tasks/cancel ─▶ the execution is cancelled (an ended one: nothing changes)

Execution states map as: pending, running, retrying → ``working`` (or
``input_required`` while the tool waits on the client); ``completed`` →
``completed`` with the very ``CallToolResult`` ``tools/call`` would have
answered; ``failed`` → ``completed`` with that tool error (``isError``), or
``failed`` with the JSON-RPC error when the failure was ours
(``internal_error``, results.py); ``cancelled`` → ``cancelled``.

Which calls become tasks is ours to decide (SEP-2663): a call from a client
that declared the extension on that request (2026-07-28 wire only), for a
tool whose task support (catalog.py) is ``optional`` or ``required``; a
``required`` tool refuses clients without the extension (-32021).
``ttlMs`` is how long the execution is kept (``ToolExecution.expires_at``,
else ``MCP_RETENTION_DAYS``); a client cannot ask for another on this wire.
Every request is checked against the caller: someone else's task is an
unknown task (-32602), as the spec asks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import mcp_types as types
from channels.db import database_sync_to_async
from django.conf import settings
from mcp.server.context import ServerRequestContext
from mcp.server.extension import Extension, MethodBinding
from mcp.server.lowlevel import Server
from mcp.server.mcpserver.server import require_client_extension
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ConfigDict, Field

from mcp_tools import selectors, services
from mcp_tools.errors import NotFound
from mcp_tools.models import Tool, ToolExecution

from . import catalog, inputs, results

EXTENSION_ID = "io.modelcontextprotocol/tasks"
# statusMessage of a working task: the end of the text streamed so far, at most this long.
STATUS_MESSAGE_MAX_CHARS = 2000

TASK_METHODS = frozenset({"tasks/get", "tasks/update", "tasks/cancel"})

UserResolver = Callable[[ServerRequestContext], Awaitable[Any]]


class TaskParams(types.RequestParams):
    model_config = ConfigDict(extra="allow")
    task_id: str = Field(alias="taskId")


class UpdateTaskParams(TaskParams):
    input_responses: dict[str, Any] = Field(default_factory=dict, alias="inputResponses")


def declared(ctx: ServerRequestContext) -> bool:
    """Whether this request's client declared the extension (2026-07-28 wire only)."""
    capabilities = ctx.session.client_capabilities
    return (
        ctx.protocol_version in MODERN_PROTOCOL_VERSIONS
        and capabilities is not None
        and EXTENSION_ID in (capabilities.extensions or {})
    )


def runs_as_task(ctx: ServerRequestContext, tool: Tool) -> bool:
    support = catalog.task_support(tool)
    if support == "forbidden":
        return False
    if declared(ctx):
        return True
    if support == "required":
        require_client_extension(ctx, EXTENSION_ID)  # raises -32021 naming the extension
    return False


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _ttl_ms(execution: ToolExecution) -> int:
    if execution.expires_at is not None:
        return max(1, int((execution.expires_at - execution.created_at) / timedelta(milliseconds=1)))
    return settings.MCP_CONFIG["RETENTION_DAYS"] * 24 * 60 * 60 * 1000


def _base(execution: ToolExecution, status: str) -> dict[str, Any]:
    updated = execution.completed_at or execution.started_at or execution.created_at
    return {
        "taskId": str(execution.pk),
        "status": status,
        "createdAt": _iso(execution.created_at),
        "lastUpdatedAt": _iso(updated),
        "ttlMs": _ttl_ms(execution),
        "pollIntervalMs": settings.MCP_TASK_POLL_INTERVAL_MS,
    }


async def created(execution: ToolExecution) -> dict[str, Any]:
    """The CreateTaskResult for a just-started (or re-attached) execution: its current state, flat."""
    detailed = await database_sync_to_async(describe)(execution.pk)
    return {key: value for key, value in detailed.items() if key not in ("result", "error", "inputRequests")} | {
        "resultType": "task"
    }


def _streamed_text(execution_id: str) -> str:
    events, _ = selectors.execution_events(execution_id)
    text: list[str] = []
    for event in events:
        if event["type"] == "execution.status" and event.get("status") == "retrying":
            text = []
        elif event["type"] == "execution.delta":
            text.append(event["text"])
    return "".join(text)[-STATUS_MESSAGE_MAX_CHARS:]


def describe(execution_id: Any) -> dict[str, Any]:
    """The DetailedTask of an execution (a fresh read of the row)."""
    execution = ToolExecution.objects.select_related("tool").get(pk=execution_id)
    status = execution.status
    if status in ToolExecution.ACTIVE_STATUSES:
        waiting = inputs.outstanding(str(execution.pk))
        if waiting:
            return {
                **_base(execution, "input_required"),
                "inputRequests": waiting,
                "statusMessage": "Waiting for your input.",
            }
        return {**_base(execution, "working"), "statusMessage": _streamed_text(str(execution.pk)) or status}
    if status == ToolExecution.Status.CANCELLED:
        return {**_base(execution, "cancelled"), "statusMessage": results.CANCELLED_ERROR["message"]}
    terminal = {
        "type": f"execution.{status}",
        "execution_id": str(execution.pk),
        "result": execution.result,
        "error": {"code": execution.error_code or "internal_error", "message": execution.error or ""},
    }
    try:
        answer = results.terminal_result(terminal, output_field=execution.tool.output_field)
    except MCPError as exc:
        return {
            **_base(execution, "failed"),
            "statusMessage": exc.error.message,
            "error": exc.error.model_dump(by_alias=True, exclude_none=True),
        }
    return {**_base(execution, "completed"), "result": answer.model_dump(by_alias=True, mode="json", exclude_none=True)}


class TasksExtension(Extension):
    """``tasks/get``, ``tasks/update``, ``tasks/cancel`` for the callers ``user_for`` names."""

    identifier = EXTENSION_ID

    def __init__(self, user_for: UserResolver) -> None:
        self.user_for = user_for

    def methods(self) -> list[MethodBinding]:
        modern = frozenset(MODERN_PROTOCOL_VERSIONS)
        return [
            MethodBinding("tasks/get", TaskParams, self.get, protocol_versions=modern),
            MethodBinding("tasks/update", UpdateTaskParams, self.update, protocol_versions=modern),
            MethodBinding("tasks/cancel", TaskParams, self.cancel, protocol_versions=modern),
        ]

    async def _visible(self, ctx: ServerRequestContext, task_id: str) -> ToolExecution:
        require_client_extension(ctx, EXTENSION_ID)
        user = await self.user_for(ctx)
        try:
            return await database_sync_to_async(selectors.execution_get_visible)(user=user, execution_id=task_id)
        except NotFound:
            raise MCPError(code=types.INVALID_PARAMS, message="Failed to retrieve task: Task not found") from None

    async def get(self, ctx: ServerRequestContext, params: TaskParams) -> dict[str, Any]:
        execution = await self._visible(ctx, params.task_id)
        return await database_sync_to_async(describe)(execution.pk)

    async def update(self, ctx: ServerRequestContext, params: UpdateTaskParams) -> dict[str, Any]:
        execution = await self._visible(ctx, params.task_id)
        await database_sync_to_async(inputs.answer)(str(execution.pk), params.input_responses)
        return {}

    async def cancel(self, ctx: ServerRequestContext, params: TaskParams) -> dict[str, Any]:
        execution = await self._visible(ctx, params.task_id)
        user = await self.user_for(ctx)
        await database_sync_to_async(services.execution_cancel)(user=user, execution_id=str(execution.pk))
        return {}


async def routing_header_matches(ctx: ServerRequestContext, call_next):
    """Server middleware: ``Mcp-Name`` on tasks/get, update, cancel must name the body's taskId (SEP-2663).

    A request without the header is served (clients that predate SEP-2243);
    one whose header names another task is refused with -32020 (HTTP 400).
    """
    if ctx.method in TASK_METHODS and ctx.request is not None:
        header = ctx.request.headers.get("mcp-name")
        task_id = (ctx.params or {}).get("taskId")
        if header is not None and header.strip() != task_id:
            raise MCPError(code=types.HEADER_MISMATCH, message="Mcp-Name header does not match params.taskId")
    return await call_next(ctx)


def apply_extension(server: Server, extension: Extension) -> None:
    """What ``MCPServer(extensions=[...])`` does, on the low-level server: methods and the advertisement."""
    for method in extension.methods():
        versions = method.protocol_versions

        def gated(
            ctx: ServerRequestContext,
            params: Any,
            *,
            _method: MethodBinding = method,
            _versions: frozenset[str] | None = versions,
        ):
            if _versions is not None and ctx.protocol_version not in _versions:
                raise MCPError(code=types.METHOD_NOT_FOUND, message="Method not found", data=_method.method)
            return _method.handler(ctx, params)

        server.add_request_handler(method.method, method.params_type, gated)
    server.extensions[extension.identifier] = extension.settings()
