"""Connection limits, idle policy and recovery of events the channel layer lost."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from mcp_tools import services
from mcp_tools.events import Entry, cancelled_event, get_event_log, status_event
from tests.conftest import HOST, ORIGIN, receive, receive_until_terminal, send

pytestmark = pytest.mark.django_db(transaction=True)


async def test_connections_per_user_are_limited_with_4429(tools, alice, connect, settings):
    from config.asgi import application

    settings.MCP_CONFIG = {**settings.MCP_CONFIG, "WS_MAX_CONNECTIONS_PER_USER": 2}
    first, second = await connect(alice), await connect(alice)
    third = WebsocketCommunicator(
        application,
        "/ws/executions/",
        headers=[ORIGIN, HOST, (b"authorization", f"Token {alice.auth_token.key}".encode())],
    )
    assert (await third.connect(timeout=10))[0]
    error = await receive(third)
    assert error["code"] == "rate_limited" and error["retry_after"] > 0
    assert await third.receive_output(timeout=5) == {"type": "websocket.close", "code": 4429}
    await second.disconnect()
    again = await connect(alice)  # a slot is free again
    await send(again, {"type": "ping"})
    assert await receive(again) == {"type": "pong"}
    await send(first, {"type": "ping"})
    assert await receive(first) == {"type": "pong"}


async def test_idle_connection_without_subscriptions_is_closed_with_4408(alice, connect, settings):
    settings.MCP_CONFIG = {**settings.MCP_CONFIG, "WS_IDLE_TIMEOUT_S": 0.2, "DELIVERY_POLL_S": 0.1}
    comm = await connect(alice)
    assert await comm.receive_output(timeout=5) == {"type": "websocket.close", "code": 4408}


async def test_events_lost_by_the_channel_layer_are_recovered_from_the_log(tools, alice, connect, settings):
    """An event that reached the log but never the group (the last one, so no later
    event reveals the gap) is delivered by the connection's catch-up."""
    settings.MCP_CONFIG = {**settings.MCP_CONFIG, "DELIVERY_POLL_S": 0.2}
    execution = await database_sync_to_async(services.execution_prepare)(
        user=alice, tool_name="generate_report", parameters={"data": {}}
    )  # pending, seq 1
    writer = await database_sync_to_async(services.writer_for)(execution)
    comm = await connect(alice)
    await send(comm, {"type": "subscribe", "execution_id": str(execution.pk)})
    assert (await receive(comm))["type"] == "subscribed"
    assert (await receive(comm))["status"] == "pending"
    get_event_log().append_many(
        [
            Entry(
                str(execution.pk),
                {**status_event("running", attempt=1), "execution_id": str(execution.pk)},
                execution.epoch,
            )
        ]
    )
    recovered = await receive(comm, timeout=5)  # logged, never sent
    assert (recovered["seq"], recovered["status"]) == (2, "running")
    writer.append([status_event("running", attempt=1)])  # seq 3 arrives live, no duplicate of seq 2
    [ended] = writer.append([cancelled_event(duration_ms=1, attempt=1)])
    writer.send({**cancelled_event(duration_ms=1, attempt=1), "execution_id": str(execution.pk), "seq": ended.seq})
    rest = await receive_until_terminal(comm)
    assert [e["seq"] for e in rest] == [3, 4]
