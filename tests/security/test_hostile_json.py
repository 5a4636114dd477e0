"""Hostile JSON on the embedded default: refused as a client error on every entry point, nothing stored.

One check (``mcp_tools/jsonguard.py``) on WebSocket frames, REST bodies and
MCP requests: numbers out of range (``1e999``, once answered "the database or
Redis is unavailable"), NaN, lone surrogate escapes, U+0000, nesting deeper
than ``MCP_JSON_MAX_DEPTH``, bodies over ``DATA_UPLOAD_MAX_MEMORY_SIZE``.
After each, the same client runs a report normally.
"""

from __future__ import annotations

import json

import anyio
import httpx
import pytest
from asgiref.sync import sync_to_async

from mcp_tools import services
from mcp_tools.errors import InvalidParameters
from mcp_tools.models import ToolExecution
from tests.api.conftest import REPORT_PARAMETERS, client_for
from tests.conftest import receive, receive_until_terminal, run_now, send
from tests.mcp.helpers import http_session, structured

pytestmark = pytest.mark.django_db(transaction=True)

DEPTH = 8  # MCP_JSON_MAX_DEPTH in these tests


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


def execute_frame(data: str, request_id: str = "h1") -> str:
    return (
        '{"type": "execute", "tool": "generate_report", "use_cache": false, "request_id": "%s", '
        '"parameters": {"data": {"x": %s}}}' % (request_id, data)
    )


# value of parameters.data.x -> whether the frame still parses (so its request_id can be echoed)
HOSTILE_VALUES = {
    "number out of range": ("1e999", True),
    "negative number out of range": ("-1e999", True),
    "lone surrogate escape": ('"\\ud800"', True),
    "low surrogate in a key": ('{"\\udfff": 1}', True),
    "NUL": ('"a\\u0000b"', True),
    "deeper than the limit": (nested(DEPTH), True),
    "NaN": ("NaN", False),
    "Infinity": ("Infinity", False),
    "nested 30,000 deep": (nested(30_000), False),  # past what the parser can recurse: under the frame limit
}


@pytest.fixture(autouse=True)
def _depth_limit(settings):
    settings.MCP_CONFIG = {**settings.MCP_CONFIG, "JSON_MAX_DEPTH": DEPTH}


async def run_report(comm) -> dict:
    await send(comm, {"type": "execute", "tool": "generate_report", "parameters": REPORT_PARAMETERS})
    assert (await receive(comm))["type"] == "execution.accepted"
    events = await receive_until_terminal(comm)
    assert events[-1]["type"] == "execution.completed", events[-1]
    return events[-1]


@pytest.mark.parametrize("value,parses", HOSTILE_VALUES.values(), ids=HOSTILE_VALUES.keys())
async def test_websocket_execute_with_hostile_json_is_invalid_json_and_stores_nothing(
    tools, alice, connect, value, parses
):
    comm = await connect(alice)
    await comm.send_to(text_data=execute_frame(value))
    error = await receive(comm)
    assert error["type"] == "error" and error["code"] == "invalid_json", error
    assert error.get("request_id") == ("h1" if parses else None)
    assert await ToolExecution.objects.acount() == 0
    await run_report(comm)


async def test_websocket_frame_at_the_depth_limit_is_accepted(tools, alice, connect):
    comm = await connect(alice)
    # envelope, parameters, data, x: four levels before the nested lists
    await comm.send_to(text_data=execute_frame(nested(DEPTH - 4)))
    assert (await receive(comm))["type"] == "execution.accepted"
    assert (await receive_until_terminal(comm))[-1]["type"] == "execution.completed"


# --- REST -------------------------------------------------------------------------------------------


def post_body(
    user, body: bytes, path: str = "/api/tools/generate_report/execute/", content_type: str = "application/json"
):
    client = client_for(user)
    client.raise_request_exception = False
    return client.generic("POST", path, body, content_type=content_type)


@pytest.mark.parametrize("value,parses", HOSTILE_VALUES.values(), ids=HOSTILE_VALUES.keys())
def test_rest_body_with_hostile_json_is_400_invalid_json_and_stores_nothing(tools, alice, value, parses):
    body = ('{"use_cache": false, "parameters": {"data": {"x": %s}}}' % value).encode()
    for path in ("/api/tools/generate_report/execute/", "/api/tools/generate_report/execute_async/"):
        response = post_body(alice, body, path)
        assert response.status_code == 400, response.content[:300]
        assert response.json()["error"]["code"] == "invalid_json"
        assert response.json()["error"]["message"]
    assert ToolExecution.objects.count() == 0
    assert post_body(alice, json.dumps({"parameters": REPORT_PARAMETERS}).encode()).status_code == 200


def test_rest_body_that_is_not_utf8_is_invalid_json(tools, alice):
    response = post_body(alice, b'{"parameters": {"data": {"x": "\xff"}}}')
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"


def test_rest_body_over_the_upload_limit_is_413_in_the_error_envelope(tools, alice, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    big = json.dumps({"parameters": {"data": {"x": "y" * (65 * 1024)}}}).encode()
    for path, content_type, body in [
        ("/api/tools/generate_report/execute/", "application/json", big),
        ("/api/tools/generate_report/execute_async/", "application/json", big),
        ("/api/auth/token/", "application/json", big),
        ("/api/auth/token/", "application/x-www-form-urlencoded", b"username=alice&password=" + b"x" * 70_000),
    ]:
        response = post_body(alice, body, path, content_type)
        assert response.status_code == 413, (path, response.content[:300])
        assert response.json()["error"]["code"] == "request_too_large"
    assert ToolExecution.objects.count() == 0
    assert post_body(alice, json.dumps({"parameters": REPORT_PARAMETERS}).encode()).status_code == 200


def test_rest_body_of_three_mib_is_413_with_the_default_limit(tools, alice):
    body = json.dumps({"parameters": {"data": {"x": "y" * (3 * 1024 * 1024)}}}).encode()
    response = post_body(alice, body)
    assert response.status_code == 413 and response.json()["error"]["code"] == "request_too_large"
    assert post_body(alice, json.dumps({"parameters": REPORT_PARAMETERS}).encode()).status_code == 200


# --- MCP ---------------------------------------------------------------------------------------------

MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def mcp_session(url: str, token: str) -> dict[str, str]:
    """A session opened with plain HTTP, as any client does: the headers its later requests carry."""
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {token}"}
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}},
    }
    response = httpx.post(url, headers=headers, json=initialize, timeout=30)
    assert response.status_code == 200, response.text
    headers["Mcp-Session-Id"] = response.headers["mcp-session-id"]
    headers["Mcp-Protocol-Version"] = "2025-11-25"
    initialized = httpx.post(url, headers=headers, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
    assert initialized.status_code == 202, initialized.text
    return headers


@pytest.mark.parametrize("value,parses", HOSTILE_VALUES.values(), ids=HOSTILE_VALUES.keys())
def test_mcp_call_with_hostile_json_is_a_json_rpc_parse_error_before_the_sdk(
    uvicorn_server, tools, alice, value, parses
):
    url = uvicorn_server.url + "/mcp"
    headers = mcp_session(url, alice.auth_token.key)
    body = (
        '{"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "generate_report", '
        '"arguments": {"data": {"x": %s}}}}' % value
    )
    response = httpx.post(url, headers=headers, content=body.encode(), timeout=30)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == -32700 and error["data"]["code"] == "invalid_json" and error["message"]
    assert ToolExecution.objects.count() == 0
    assert_mcp_call_works(url, alice)


def test_mcp_body_over_the_upload_limit_is_413(uvicorn_server, tools, alice, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    url = uvicorn_server.url + "/mcp"
    headers = mcp_session(url, alice.auth_token.key)
    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "generate_report", "arguments": {"data": {"x": "y" * (65 * 1024)}}},
        }
    )
    response = httpx.post(url, headers=headers, content=body.encode(), timeout=30)
    assert response.status_code == 413 and response.json()["error"]["data"]["code"] == "request_too_large"
    assert ToolExecution.objects.count() == 0
    assert_mcp_call_works(url, alice)


def assert_mcp_call_works(url: str, user) -> None:
    async def call():
        async with http_session(url, user.auth_token.key) as session:
            return await session.call_tool("generate_report", REPORT_PARAMETERS)

    result = anyio.run(call)
    assert not result.is_error and structured(result)["report"]


# --- Parameters that arrive already parsed (stdio, the CLI) -------------------------------------------


@pytest.mark.parametrize(
    "parameters",
    [
        {"data": {"x": float("inf")}},
        {"data": {"x": float("nan")}},
        {"data": {"\ud800": 1}},
        {"data": {"x": "\x00"}},
        {"data": json.loads(nested(DEPTH))},
    ],
    ids=["infinity", "nan", "surrogate key", "NUL", "too deep"],
)
async def test_service_refuses_parameters_no_database_stores_as_invalid_parameters(tools, alice, parameters):
    with pytest.raises(InvalidParameters) as refused:
        await sync_to_async(services.execution_prepare)(user=alice, tool_name="generate_report", parameters=parameters)
    assert refused.value.details[0]["field"] == "data"
    assert await ToolExecution.objects.acount() == 0
    execution = await sync_to_async(run_now)(alice, "generate_report", REPORT_PARAMETERS)
    assert execution.status == "completed"
