"""Permissions, not ``is_staff``, through real daphne and celery workers on PostgreSQL and Redis."""

from __future__ import annotations

import httpx
import pytest
from django.conf import settings
from django.test import Client
from websockets.exceptions import ConnectionClosed

from mcp_tools.models import ToolExecution
from tests.api.conftest import REPORT_PARAMETERS, token_headers
from tests.e2e.helpers import recv, recv_until, send, ws_connect
from tests.stack import wait_until

pytestmark = [pytest.mark.production, pytest.mark.django_db(transaction=True)]


def start_long_report(stack, user) -> str:
    stack.anthropic.set_default({"tokens": 400, "delay_ms": 25})  # ~10 s: still running while we try
    response = httpx.post(
        f"{stack.http_url}/api/tools/generate_report/execute_async/",
        headers=token_headers(user),
        json={"parameters": REPORT_PARAMETERS, "use_cache": False},
        timeout=30,
    )
    return response.json()["execution_id"]


def test_staff_alone_neither_monitors_nor_watches_nor_cancels_others_through_daphne(
    stack, tools, alice, staff, operator
):
    execution_id = start_long_report(stack, alice)
    with ws_connect(stack.ws_url, staff.auth_token.key, path="/ws/monitor/") as monitor:
        with pytest.raises(ConnectionClosed) as closed:
            recv(monitor)
        assert closed.value.rcvd.code == 4403
    with ws_connect(stack.ws_url, staff.auth_token.key) as ws:
        for kind in ("subscribe", "cancel"):
            send(ws, {"type": kind, "execution_id": execution_id, "request_id": kind})
            answer = recv(ws)
            assert (answer["type"], answer["code"], answer["request_id"]) == ("error", "not_found", kind)
    assert not ToolExecution.objects.get(pk=execution_id).is_terminal
    client = Client()
    client.force_login(staff)
    page = httpx.get(
        f"{stack.http_url}/admin/monitor/",
        timeout=30,
        cookies={settings.SESSION_COOKIE_NAME: client.cookies[settings.SESSION_COOKIE_NAME].value},
    )
    assert page.status_code == 403

    with ws_connect(stack.ws_url, operator.auth_token.key, path="/ws/monitor/") as monitor:
        snapshot = recv(monitor)
        assert snapshot["type"] == "monitor.snapshot"
        assert execution_id in [e["execution_id"] for e in snapshot["executions"]]
        with ws_connect(stack.ws_url, operator.auth_token.key) as ws:
            send(ws, {"type": "cancel", "execution_id": execution_id})
        ended = recv_until(
            monitor, lambda m: m.get("execution_id") == execution_id and m["type"] == "execution.cancelled"
        )
        assert ended[-1]["user"] == "alice"
    wait_until(
        lambda: ToolExecution.objects.get(pk=execution_id).status == "cancelled",
        timeout=20,
        what="the row to say cancelled",
    )
