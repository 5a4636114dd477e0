"""The MCP server: the active ``Tool`` rows as MCP tools, run as executions.

Built on the SDK's low-level ``mcp.server.Server`` (the engine under
``MCPServer``), because our tools are rows, not Python functions:
``MCPServer`` derives each tool's input schema from a function signature and
registers tools once, while ``on_list_tools`` / ``on_call_tool`` read the
registry on every request. Adding a tool to ``gantz.yaml`` and running
``sync_tools`` makes it appear, with no code per tool::

    server = build_server(user_for=request_user)
    # tools/list -> one Tool per active row: name, description, inputSchema = parameters_schema

``tools/call`` is ``services.execution_start`` (Celery in production, the
embedded worker otherwise) as the calling user, then the execution is
followed like a WebSocket subscriber follows it (``follow.py``). While it
streams, a client that sent a ``progressToken`` gets
``notifications/progress`` with:

* ``progress``: the number of text pieces (deltas) received so far, across
  retries, so it only ever rises as the spec requires;
* ``message``: the **whole text streamed so far** (after a ``retrying``
  event, the text of the new attempt), not just the new piece, so a client
  that shows the latest progress message shows the output as it grows, and
  a dropped notification loses nothing.

The answer is the tool's result, or a tool error (``results.py``). When the
client cancels (``notifications/cancelled``, or closing the request on the
2026-07-28 protocol) the SDK cancels this handler, and the execution is
cancelled with ``services.execution_cancel``, which stops the provider stream.
The same happens when the call's session ends under it (the client deletes
it, it idles out, the server shuts down): nobody is left to receive the answer.
"""
from __future__ import annotations

import logging
from typing import Any

import anyio
import mcp_types as types
from channels.db import database_sync_to_async
from mcp.server import Server
from mcp.server.context import ServerRequestContext

from mcp_tools import selectors, services
from mcp_tools.errors import ServiceError
from mcp_tools.events import Event

from . import results
from .auth import UserResolver
from .follow import follow_execution

logger = logging.getLogger(__name__)

# The name gantz.yaml gives the same tools, so clients see one server either way.
SERVER_NAME = "django-mcp-app"
SERVER_VERSION = "1.0.0"
INSTRUCTIONS = ("AI tools of this service. Every call is recorded as an execution of your user; "
                "long outputs stream as progress notifications while they are written.")


def build_server(*, user_for: UserResolver) -> Server:
    """A low-level MCP server whose tools are the active Tool rows."""

    async def list_tools(ctx: ServerRequestContext,
                         params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=await _visible_tools(await user_for(ctx)))

    async def call_tool(ctx: ServerRequestContext, params: types.CallToolRequestParams) -> types.CallToolResult:
        user = await user_for(ctx)
        try:
            return await ToolCall(ctx, user=user).run(params.name, params.arguments or {})
        except Exception:
            logger.exception("MCP tools/call %s failed unexpectedly", params.name)
            return results.service_error_result(
                ServiceError("Something went wrong on our side; the call was not completed."))

    return Server(SERVER_NAME, version=SERVER_VERSION, instructions=INSTRUCTIONS,
                  on_list_tools=list_tools, on_call_tool=call_tool)


@database_sync_to_async
def _visible_tools(user) -> list[types.Tool]:
    return [
        types.Tool(name=tool.name, description=tool.description,
                   input_schema=tool.parameters_schema or {"type": "object"})
        for tool in selectors.tools_visible_to(user)
    ]


class ToolCall:
    """One ``tools/call``: start the execution, relay its text as progress, answer."""

    def __init__(self, ctx: ServerRequestContext, *, user: Any) -> None:
        self.ctx = ctx
        self.user = user
        self.deltas = 0
        self.text: list[str] = []

    async def run(self, tool_name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        try:
            # Shielded: a cancel arriving meanwhile is raised just after, with the id known.
            with anyio.CancelScope(shield=True):
                execution = await database_sync_to_async(services.execution_start)(
                    user=self.user, tool_name=tool_name, parameters=arguments)
        except ServiceError as exc:
            return results.service_error_result(exc)
        execution_id = str(execution.pk)
        logger.info("MCP tools/call %s by %s: execution %s", tool_name, self.user, execution_id)
        try:
            terminal = await follow_execution(execution_id, on_event=self.on_event)
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await self.cancel(execution_id)
            raise
        return results.terminal_result(terminal)

    async def on_event(self, event: Event) -> None:
        if event["type"] == "execution.reset" or (event["type"] == "execution.status"
                                                  and event.get("status") == "retrying"):
            self.text = []  # docs/protocol.md: the output starts again
        elif event["type"] == "execution.delta":
            self.deltas += 1
            self.text.append(event["text"])
            await self.ctx.session.report_progress(self.deltas, None, "".join(self.text))

    async def cancel(self, execution_id: str) -> None:
        logger.info("MCP call for execution %s was cancelled; cancelling the execution", execution_id)
        try:
            await database_sync_to_async(services.execution_cancel)(user=self.user, execution_id=execution_id)
        except Exception:
            logger.exception("Could not cancel execution %s", execution_id)
