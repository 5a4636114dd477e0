"""The MCP server: the tools a caller may use, run as executions.

Built on the SDK's low-level ``mcp.server.Server`` (the engine under
``MCPServer``), because our tools are rows, not Python functions:
``on_list_tools`` / ``on_call_tool`` read the registry on every request, so a
tool added to ``gantz.yaml`` (``sync_tools``) appears with no code per tool::

    server = build_server(user_for=request_user)
    # tools/list -> the tools the caller may use: name, description, inputSchema, outputSchema
    # tools/call -> calls.ToolCall: an execution of the caller, streamed as progress, or a task

What the SDK's ``MCPServer`` adds on top of the low-level server, this module
adds the same way: the Tasks extension (tasks.py) through the SDK's
``Extension`` hook, the ``RequestStateBoundary`` that seals the state of
multi-round-trip calls (keys derived from ``SECRET_KEY``, so every server
process accepts what another sealed), and ``subscriptions/listen`` on an
in-process bus. Caching hints (``ttlMs``/``cacheScope``) ride on
``tools/list``: private, since what a caller sees depends on who it is.

Other apps may contribute MCP surface (prompts, resources, completions):
``settings.MCP_SERVER_CONTRIBUTIONS`` lists dotted paths of functions
``contribute(server)`` called once on the new server (the conformance
fixture's prompts and resources come in this way).
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import mcp_types as types
from django.conf import settings
from django.utils.module_loading import import_string
from mcp.server import Server
from mcp.server.caching import CacheHint
from mcp.server.context import ServerRequestContext
from mcp.server.request_state import RequestStateBoundary, RequestStateSecurity
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler
from mcp.shared.exceptions import MCPError

from mcp_tools.errors import ServiceError

from . import catalog, results
from .auth import UserResolver, request_scopes
from .calls import ToolCall
from .tasks import TasksExtension, apply_extension, routing_header_matches

logger = logging.getLogger(__name__)

# The name gantz.yaml gives the same tools, so clients see one server either way.
SERVER_NAME = "django-mcp-app"
SERVER_VERSION = "1.0.0"
INSTRUCTIONS = (
    "AI tools of this service. Every call is recorded as an execution of your user; "
    "long outputs stream as progress notifications while they are written, or run as tasks "
    "for clients that take the Tasks extension."
)
# tools/list may be reused by the same caller for this long.
TOOLS_LIST_TTL_MS = 60_000
# requestState of a multi-round-trip call is accepted back for this long.
REQUEST_STATE_TTL_S = 10 * 60

# Where list-changed events are published to open subscriptions/listen streams (this process's).
subscription_bus = InMemorySubscriptionBus()


def request_state_security() -> RequestStateSecurity:
    """AES-GCM sealing with a key derived from SECRET_KEY: the same on every server process."""
    key = hashlib.sha256(b"mcp-request-state:" + settings.SECRET_KEY.encode()).hexdigest()
    return RequestStateSecurity(keys=[key], ttl=REQUEST_STATE_TTL_S)


def build_server(*, user_for: UserResolver) -> Server:
    """A low-level MCP server whose tools are the caller's tools."""

    async def list_tools(
        ctx: ServerRequestContext, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        user = await user_for(ctx)
        return types.ListToolsResult(tools=await catalog.visible_tools(user, request_scopes(ctx)))

    async def call_tool(ctx: ServerRequestContext, params: types.CallToolRequestParams) -> Any:
        user = await user_for(ctx)
        try:
            return await ToolCall(ctx, user=user, scopes=request_scopes(ctx)).run(params)
        except MCPError:
            raise
        except Exception:
            logger.exception("MCP tools/call %s failed unexpectedly", params.name)
            return results.service_error_result(
                ServiceError("Something went wrong on our side; the call was not completed.")
            )

    server = Server(
        SERVER_NAME,
        version=SERVER_VERSION,
        instructions=INSTRUCTIONS,
        cache_hints={"tools/list": CacheHint(ttl_ms=TOOLS_LIST_TTL_MS, scope="private")},
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_subscriptions_listen=ListenHandler(subscription_bus),
    )
    server.middleware.append(RequestStateBoundary(request_state_security(), default_audience=SERVER_NAME))
    server.middleware.append(routing_header_matches)
    apply_extension(server, TasksExtension(user_for))
    for path in getattr(settings, "MCP_SERVER_CONTRIBUTIONS", ()):
        import_string(path)(server)
    return server
