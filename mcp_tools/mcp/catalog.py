"""Which tools a caller sees over MCP, and how each is described.

The same access rule as every other transport (``selectors.tools_visible_to``
/ ``tool_get_usable``: a tool's groups and permission), narrowed by the
caller's OAuth scopes when the request carries an OAuth token (auth.py)::

    tools = await visible_tools(user, scopes)      # tools/list
    tool = await usable_tool(user, scopes, name)   # tools/call; UnknownTool otherwise

Every tool is listed with its ``outputSchema`` (the JSON Schema of its result
object, ``Tool.output_schema``); a tool without one is listed with the
widest schema, an object. How a tool runs under the Tasks extension is
``task_support(tool)``: ``definition["mcp"]["tasks"]`` if its definition
says, else ``optional`` (every tool may become a task for a client that takes
tasks).
"""

from __future__ import annotations

from typing import Any, Literal

import mcp_types as types
from channels.db import database_sync_to_async

from mcp_tools import selectors
from mcp_tools.errors import UnknownTool
from mcp_tools.models import Tool

TaskSupport = Literal["forbidden", "optional", "required"]
ANY_OBJECT: dict[str, Any] = {"type": "object"}

# OAuth scopes (auth.py): "tools" reaches every tool the user may use; "tools:<name>" one of them.
ALL_TOOLS_SCOPE = "tools"


def scope_allows(scopes: frozenset[str] | None, tool_name: str) -> bool:
    """``None``: not an OAuth request (DRF token, stdio): the user's own access rule decides alone."""
    return scopes is None or ALL_TOOLS_SCOPE in scopes or f"tools:{tool_name}" in scopes


def task_support(tool: Tool) -> TaskSupport:
    value = ((tool.definition or {}).get("mcp") or {}).get("tasks", "optional")
    return value if value in ("forbidden", "optional", "required") else "optional"


def describe(tool: Tool) -> types.Tool:
    return types.Tool(
        name=tool.name,
        description=tool.description,
        input_schema=tool.parameters_schema or ANY_OBJECT,
        output_schema=tool.output_schema or ANY_OBJECT,
    )


@database_sync_to_async
def visible_tools(user, scopes: frozenset[str] | None) -> list[types.Tool]:
    return [describe(tool) for tool in selectors.tools_visible_to(user) if scope_allows(scopes, tool.name)]


@database_sync_to_async
def usable_tool(user, scopes: frozenset[str] | None, name: Any) -> Tool:
    tool = selectors.tool_get_usable(user=user, name=name)
    if not scope_allows(scopes, tool.name):
        raise UnknownTool(f"No active tool is named {name!r}.")
    return tool
