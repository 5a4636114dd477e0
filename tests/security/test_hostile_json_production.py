"""Hostile JSON on the production topology: daphne, celery workers, Redis, PostgreSQL.

PostgreSQL refuses infinities, NaN, lone surrogates and U+0000 outright, so
here an unchecked value used to surface as a database error ("the database or
Redis is unavailable", a 500). Each is now the transport's client error
before anything is stored, and the same client then runs a report.
"""

from __future__ import annotations

import json

import httpx
import pytest

from mcp_tools.models import ToolExecution
from tests.api.conftest import REPORT_PARAMETERS, token_headers
from tests.e2e.helpers import recv, recv_until_terminal, send, ws_connect
from tests.security.test_hostile_json import MCP_HEADERS, execute_frame, nested

pytestmark = [pytest.mark.production, pytest.mark.django_db(transaction=True)]

HOSTILE_VALUES = {
    "number out of range": "1e999",
    "lone surrogate escape": '"\\ud800"',
    "NUL": '"a\\u0000b"',
    "deeper than the limit": nested(64),
    "NaN": "NaN",
}


@pytest.mark.parametrize("value", HOSTILE_VALUES.values(), ids=HOSTILE_VALUES.keys())
def test_hostile_json_is_a_client_error_on_every_transport_through_daphne(stack, tools, alice, value):
    with ws_connect(stack.ws_url, alice.auth_token.key) as ws:
        ws.send(execute_frame(value))
        error = recv(ws)
        assert error["type"] == "error" and error["code"] == "invalid_json", error
        send(ws, {"type": "execute", "tool": "generate_report", "parameters": REPORT_PARAMETERS})
        assert recv(ws)["type"] == "execution.accepted"
        assert recv_until_terminal(ws)[-1]["type"] == "execution.completed"

    body = ('{"use_cache": false, "parameters": {"data": {"x": %s}}}' % value).encode()
    response = httpx.post(
        f"{stack.http_url}/api/tools/generate_report/execute_async/",
        content=body,
        headers={**token_headers(alice), "Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json", response.text

    mcp = httpx.post(
        f"{stack.http_url}/mcp",
        content=(
            '{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "generate_report", '
            '"arguments": {"data": {"x": %s}}}}' % value
        ).encode(),
        headers={**MCP_HEADERS, "Authorization": f"Bearer {alice.auth_token.key}"},
        timeout=30,
    )
    assert mcp.status_code == 400 and mcp.json()["error"]["data"]["code"] == "invalid_json", mcp.text

    assert ToolExecution.objects.count() == 1  # only the report that ran normally
    ran = httpx.post(
        f"{stack.http_url}/api/tools/generate_report/execute/",
        headers=token_headers(alice),
        json={"parameters": REPORT_PARAMETERS},
        timeout=30,
    )
    assert ran.status_code == 200 and ran.json()["status"] == "completed"


def test_bodies_over_the_upload_limit_are_413_through_daphne(stack, tools, alice):
    big = json.dumps({"parameters": {"data": {"x": "y" * (3 * 1024 * 1024)}}}).encode()
    response = httpx.post(
        f"{stack.http_url}/api/tools/generate_report/execute/",
        content=big,
        headers={**token_headers(alice), "Content-Type": "application/json"},
        timeout=60,
    )
    assert response.status_code == 413 and response.json()["error"]["code"] == "request_too_large"
    mcp = httpx.post(
        f"{stack.http_url}/mcp",
        content=big,
        timeout=60,
        headers={**MCP_HEADERS, "Authorization": f"Bearer {alice.auth_token.key}"},
    )
    assert mcp.status_code == 413 and mcp.json()["error"]["data"]["code"] == "request_too_large"
    assert ToolExecution.objects.count() == 0
    ran = httpx.post(
        f"{stack.http_url}/api/tools/generate_report/execute/",
        headers=token_headers(alice),
        json={"parameters": REPORT_PARAMETERS},
        timeout=30,
    )
    assert ran.status_code == 200 and ran.json()["status"] == "completed"
