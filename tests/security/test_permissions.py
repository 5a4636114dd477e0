"""Watching and cancelling other users' executions: permissions, not ``is_staff``, on every transport.

``mcp_tools.view_all_executions`` lets a user see everyone's executions
(subscribe, the admin; with ``is_staff`` the live monitor), and
``mcp_tools.cancel_any_execution`` cancel them; superusers hold both. A
staff user without them gets into the admin and sees only their own. The REST
API, its event stream and MCP are per user for everybody.
"""

from __future__ import annotations

import anyio
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.test import Client

from mcp_tools import services
from mcp_tools.errors import NotFound
from mcp_tools.models import ToolExecution
from tests.api.conftest import REPORT_PARAMETERS, client_for
from tests.conftest import grant, make_user, receive, receive_until_terminal, run_now, send
from tests.mcp.helpers import http_session, structured

pytestmark = pytest.mark.django_db(transaction=True)

CHANGELIST = "/admin/mcp_tools/toolexecution/"


@pytest.fixture
def viewer(db):
    """Allowed to see everyone's executions, not to cancel them, and not staff."""
    return grant(make_user("viewer"), "view_all_executions")


@pytest.fixture
def superuser(db):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-root")
    make_token(user)
    return user


def make_token(user):
    from rest_framework.authtoken.models import Token

    Token.objects.create(user=user)


def finished(user) -> ToolExecution:
    return run_now(user, "generate_report", REPORT_PARAMETERS)


def pending(user) -> ToolExecution:
    """Recorded and announced, never run (no worker consumes in these tests)."""
    return services.execution_prepare(user=user, tool_name="generate_report", parameters=REPORT_PARAMETERS)


async def ws_answer(connect, user, message: dict) -> dict:
    comm = await connect(user)
    await send(comm, {**message, "request_id": "q"})
    await send(comm, {"type": "ping", "request_id": "after"})
    return await receive(comm)


# --- WebSocket: subscribe, cancel, the monitor ---------------------------------------------------------


async def test_staff_alone_cannot_subscribe_to_or_cancel_another_users_execution(tools, alice, staff, connect):
    theirs = await sync_to_async(finished)(alice)
    running = await sync_to_async(pending)(alice)
    answer = await ws_answer(connect, staff, {"type": "subscribe", "execution_id": str(theirs.pk)})
    assert answer["type"] == "error" and answer["code"] == "not_found"
    answer = await ws_answer(connect, staff, {"type": "cancel", "execution_id": str(running.pk)})
    assert answer["type"] == "error" and answer["code"] == "not_found"
    await running.arefresh_from_db()
    assert running.status == "pending"
    # Their own work is untouched by all this.
    comm = await connect(staff)
    await send(comm, {"type": "execute", "tool": "generate_report", "parameters": REPORT_PARAMETERS})
    assert (await receive(comm))["type"] == "execution.accepted"
    assert (await receive_until_terminal(comm))[-1]["type"] == "execution.completed"


async def test_view_all_executions_allows_subscribing_but_not_cancelling(tools, alice, viewer, connect):
    theirs = await sync_to_async(finished)(alice)
    running = await sync_to_async(pending)(alice)
    answer = await ws_answer(connect, viewer, {"type": "subscribe", "execution_id": str(theirs.pk)})
    assert answer["type"] == "subscribed" and answer["last_seq"] == len(theirs.events)
    answer = await ws_answer(connect, viewer, {"type": "cancel", "execution_id": str(running.pk)})
    assert answer["type"] == "error" and answer["code"] == "not_found" and "cancel" in answer["message"]
    await running.arefresh_from_db()
    assert running.status == "pending"


async def test_cancel_any_execution_cancels_another_users_run(tools, alice, operator, connect):
    running = await sync_to_async(pending)(alice)
    answer = await ws_answer(connect, operator, {"type": "cancel", "execution_id": str(running.pk)})
    assert answer == {"type": "pong", "request_id": "after"}  # cancel has no direct answer
    await running.arefresh_from_db()
    assert running.status == "cancelled"


async def test_monitor_needs_staff_and_view_all_executions(tools, staff, viewer, operator, superuser, connect):
    for user, expected in ((staff, 4403), (viewer, 4403)):
        comm = await connect(user, path="/ws/monitor/")
        assert await comm.receive_output(timeout=5) == {"type": "websocket.close", "code": expected}
    for user in (operator, superuser):
        comm = await connect(user, path="/ws/monitor/")
        assert (await receive(comm))["type"] == "monitor.snapshot"


def test_superusers_hold_both_permissions(tools, alice, superuser):
    running = pending(alice)
    assert services.execution_cancel(user=superuser, execution_id=running.pk).status == "cancelled"


def test_service_refuses_cancelling_for_staff_without_the_permission(tools, alice, staff):
    with pytest.raises(NotFound):
        services.execution_cancel(user=staff, execution_id=pending(alice).pk)


# --- REST and its event stream: per user for everybody ---------------------------------------------------


def test_rest_and_event_stream_show_staff_and_operators_only_their_own(tools, alice, staff, operator):
    theirs = finished(alice)
    for user in (staff, operator):
        api = client_for(user)
        assert api.get(f"/api/executions/{theirs.pk}/").status_code == 404
        assert api.get(f"/api/executions/{theirs.pk}/events/").status_code == 404
        assert api.get("/api/executions/").json()["count"] == 0
    assert client_for(alice).get(f"/api/executions/{theirs.pk}/").status_code == 200


# --- MCP: every call is the caller's own execution -------------------------------------------------------


def test_mcp_calls_of_staff_are_their_own_executions(uvicorn_server, tools, alice, staff):
    finished(alice)

    async def call():
        async with http_session(uvicorn_server.url + "/mcp", staff.auth_token.key) as session:
            return await session.call_tool("generate_report", REPORT_PARAMETERS)

    result = anyio.run(call)
    execution_id = result.meta["execution_id"] if result.meta else None
    assert not result.is_error and structured(result)["report"]
    assert ToolExecution.objects.get(pk=execution_id).user == staff
    with pytest.raises(NotFound):  # and the MCP cancel path (execution_cancel as the caller) stops at its own
        services.execution_cancel(user=staff, execution_id=pending(alice).pk)


# --- The admin ------------------------------------------------------------------------------------------


def admin_as(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_admin_shows_staff_their_own_executions_and_no_monitor_without_the_permission(tools, alice, staff):
    grant(staff, "view_toolexecution", "change_toolexecution")
    theirs, mine = finished(alice), finished(staff)
    admin = admin_as(staff)
    listing = admin.get(CHANGELIST)
    assert listing.status_code == 200
    assert [e.pk for e in listing.context["cl"].result_list] == [mine.pk]
    assert "cancel_executions" not in [name for name, _ in listing.context["action_form"].fields["action"].choices]
    assert admin.get(f"{CHANGELIST}{theirs.pk}/change/").status_code == 302  # "does not exist"
    assert admin.get("/admin/monitor/").status_code == 403


def test_staff_without_model_permissions_only_gets_into_the_admin(tools, alice, staff):
    admin = admin_as(staff)
    assert admin.get("/admin/").status_code == 200
    assert admin.get(CHANGELIST).status_code == 403


def test_admin_shows_operators_everyones_executions_and_lets_them_cancel_any(tools, alice, operator):
    operator = grant(operator, "view_toolexecution", "change_toolexecution")
    theirs, running = finished(alice), pending(alice)
    admin = admin_as(operator)
    listing = admin.get(CHANGELIST)
    assert {e.pk for e in listing.context["cl"].result_list} == {theirs.pk, running.pk}
    assert admin.get(f"{CHANGELIST}{theirs.pk}/change/").status_code == 200
    assert admin.get("/admin/monitor/").status_code == 200
    response = admin.post(
        CHANGELIST, {"action": "cancel_executions", "_selected_action": [str(running.pk)]}, follow=True
    )
    assert "Cancelled 1 execution(s)." in response.content.decode()
    running.refresh_from_db()
    assert running.status == "cancelled"
