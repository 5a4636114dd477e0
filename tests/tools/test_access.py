"""Per-tool access: a tool limited to a group or a permission is invisible and unusable for anyone else.

The rule is ``selectors.tool_allowed``; this checks it on every transport, in
both topologies, for tools limited both ways and defined both ways: Gantz's
``access: {groups, permission}`` and ``@tool(groups=..., permission=...)``.
Users (``service.py``): alice has no access, opsy is in the group ops, viewer
holds auth.view_user, root is a superuser.
"""

from __future__ import annotations

import json

import anyio
import pytest

from tests.mcp.helpers import http_session
from tests.tools.service import password_of, structured

WHO_MAY = {"ops_script": "opsy", "ops_report": "opsy", "perm_http": "viewer", "user_directory": "viewer"}
LIMITED = set(WHO_MAY)


def limited_tools_listed(service, username: str) -> dict[str, set[str]]:
    """The limited tools each listing shows ``username``: REST, WebSocket, MCP."""
    with service.api(username) as api:
        rest = {tool["name"] for tool in api.get("/api/tools/", params={"page_size": 100}).json()["results"]}
    with service.ws(username) as ws:
        ws.send({"type": "list_tools"})
        websocket = {tool["name"] for tool in ws.recv()["tools"]}

    async def mcp_list():
        async with http_session(service.http_url + "/mcp", service.tokens[username]) as session:
            return {tool.name for tool in (await session.list_tools()).tools}

    mcp = anyio.run(mcp_list)
    assert "greet" in rest and "greet" in websocket and "greet" in mcp  # the open tools are there for all
    return {"rest": rest & LIMITED, "websocket": websocket & LIMITED, "mcp": mcp & LIMITED}


@pytest.mark.parametrize(
    ("username", "visible"),
    [
        ("alice", set()),
        ("opsy", {"ops_script", "ops_report"}),
        ("viewer", {"perm_http", "user_directory"}),
        ("root", LIMITED),
    ],
)
def test_each_listing_shows_a_limited_tool_only_to_who_may_use_it(service, username, visible):
    assert limited_tools_listed(service, username) == {"rest": visible, "websocket": visible, "mcp": visible}


def refusals(service, username: str, tool: str) -> dict[str, str]:
    """What each transport answers ``username`` who runs ``tool``: the error code (HTTP status for REST)."""
    with service.ws(username) as ws:
        ws.send({"type": "execute", "tool": tool, "parameters": {}, "request_id": "r"})
        websocket = ws.recv()
    with service.api(username) as api:
        rest = {
            path: api.request(method, f"/api/tools/{tool}/{path}", json={})
            for method, path in (("GET", ""), ("POST", "execute/"), ("POST", "execute_async/"))
        }

    async def mcp_call():
        async with http_session(service.http_url + "/mcp", service.tokens[username]) as session:
            return await session.call_tool(tool, {})

    mcp = anyio.run(mcp_call)
    cli = service.run_tool(tool, user=username)
    assert websocket["type"] == "error" and websocket["request_id"] == "r"
    assert all(answer.json()["error"]["code"] == "not_found" for answer in rest.values())
    assert mcp.is_error and cli.returncode == 2 and cli.stdout == ""
    return {
        "websocket": websocket["code"],
        **{f"rest {path or 'detail'}": str(answer.status_code) for path, answer in rest.items()},
        "mcp": structured(mcp)["error"]["code"],
        "run_tool": cli.stderr.split(":")[1].strip(),
    }


@pytest.mark.parametrize("tool", sorted(LIMITED))
def test_a_user_without_access_is_answered_as_if_the_tool_did_not_exist(service, tool):
    refused = refusals(service, "alice", tool)
    assert (
        refused
        == refusals(service, "alice", "no_such_tool")
        == {
            "websocket": "unknown_tool",
            "rest detail": "404",
            "rest execute/": "404",
            "rest execute_async/": "404",
            "mcp": "unknown_tool",
            "run_tool": "unknown_tool",
        }
    )
    with service.api("alice") as api:
        assert api.get("/api/executions/", params={"tool": tool}).json()["results"] == []


def test_users_with_access_use_the_limited_tools_everywhere(service):
    by_ws = service.execute_ws("opsy", "ops_script")
    with service.api("opsy") as api:
        by_rest = api.post("/api/tools/ops_report/execute/", json={}).json()

    async def by_mcp():
        async with http_session(service.http_url + "/mcp", service.tokens["viewer"]) as session:
            return await session.call_tool("perm_http", {})

    mcp = anyio.run(by_mcp)
    cli = service.run_tool("user_directory", user="viewer")
    assert by_ws[-1]["type"] == "execution.completed" and by_ws[-1]["result"]["output"] == "ops only\n"
    assert by_rest["status"] == "completed" and by_rest["result"]["output"] == "all systems nominal\n"
    assert structured(mcp) == {"output": "first", "status": 200}
    assert cli.returncode == 0 and json.loads(cli.stdout) == {"output": "asked by viewer\n"}


@pytest.mark.production
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("username", "visible"), [("alice", set()), ("opsy", {"ops_script", "ops_report"})])
def test_the_pages_tool_list_shows_a_limited_tool_only_to_who_may_use_it(production_service, ui, username, visible):
    from django.contrib.auth import get_user_model

    from tests.web.helpers import log_in

    log_in(ui, get_user_model().objects.get(username=username), password=password_of(username))
    options = set(ui.page.locator("#tool-select option").evaluate_all("(options) => options.map(o => o.value)"))
    assert "greet" in options and "count_to" in options
    assert options & LIMITED == visible
