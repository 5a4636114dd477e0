"""Every way a connection ends gives its user's connection slot back (docs/design.md, "delivery").

Fifty connections of one user, ended in every way there is — the client's
close, an oversized frame (4009), a refusal past the limit (4429), the idle
close (4408), an unreachable event store (4011), a crash inside the consumer,
the client vanishing mid-stream — and then the user still has every slot.
"""

from __future__ import annotations

import itertools

import pytest
from channels.testing import WebsocketCommunicator

from consumers import executions
from consumers.executions import ExecutionConsumer
from mcp_tools.delivery import Subscriptions
from tests.conftest import HOST, ORIGIN, receive, send

pytestmark = pytest.mark.django_db(transaction=True)

LIMIT = 5
CONNECTIONS = 50


def communicator(user):
    from config.asgi import application

    return WebsocketCommunicator(
        application,
        "/ws/executions/",
        headers=[ORIGIN, HOST, (b"authorization", f"Token {user.auth_token.key}".encode())],
    )


async def opened(user) -> WebsocketCommunicator:
    comm = communicator(user)
    assert (await comm.connect(timeout=10))[0]
    return comm


async def closed_with(comm: WebsocketCommunicator) -> int:
    while True:
        output = await comm.receive_output(timeout=10)
        if output["type"] == "websocket.close":
            return output["code"]


async def client_closes(user, monkeypatch) -> str:
    comm = await opened(user)
    await send(comm, {"type": "ping"})
    await receive(comm)
    await comm.disconnect()
    return "client close"


async def oversized_frame(user, monkeypatch) -> str:
    comm = await opened(user)
    await comm.send_to(text_data="x" * 70_000)
    assert (await receive(comm))["code"] == "message_too_large"
    assert await closed_with(comm) == 4009
    return "4009"


async def refused_past_the_limit(user, monkeypatch) -> str:
    held = [await opened(user) for _ in range(LIMIT)]
    extra = await opened(user)
    assert (await receive(extra))["code"] == "rate_limited"
    assert await closed_with(extra) == 4429
    for comm in held:
        await comm.disconnect()
    return "4429"


async def idle_close(user, monkeypatch) -> str:
    comm = await opened(user)
    assert await closed_with(comm) == 4408
    return "4408"


async def event_store_down(user, monkeypatch) -> str:
    async def unreachable(self):
        raise ConnectionError("the event store is down")

    comm = await opened(user)
    await send(comm, {"type": "subscribe", "execution_id": await running_execution(user)})
    assert (await receive(comm))["type"] == "subscribed"
    with monkeypatch.context() as patch:
        patch.setattr(Subscriptions, "poll", unreachable)
        while (await receive(comm))["type"] != "error":
            pass
        assert await closed_with(comm) == 4011
    return "4011"


async def crash_in_a_handler(user, monkeypatch) -> str:
    async def crash(self, text_data=None, bytes_data=None):
        raise RuntimeError("a bug in a handler")

    comm = await opened(user)
    with monkeypatch.context() as patch:
        patch.setattr(ExecutionConsumer, "receive", crash)
        await comm.send_to(text_data='{"type": "ping"}')
        with pytest.raises(RuntimeError):
            await comm.wait(timeout=10)
    return "crash"


async def vanishes_mid_stream(user, monkeypatch) -> str:
    comm = await opened(user)
    await send(comm, {"type": "subscribe", "execution_id": await running_execution(user)})
    assert (await receive(comm))["type"] == "subscribed"
    await comm.disconnect(code=1006)
    return "gone mid-stream"


async def running_execution(user) -> str:
    from asgiref.sync import sync_to_async

    from mcp_tools import services

    execution = await sync_to_async(services.execution_prepare)(
        user=user, tool_name="generate_report", parameters={"data": {}}
    )
    return str(execution.pk)


ENDINGS = [
    client_closes,
    oversized_frame,
    refused_past_the_limit,
    idle_close,
    event_store_down,
    crash_in_a_handler,
    vanishes_mid_stream,
]


async def test_fifty_connections_ended_every_way_give_every_slot_back(tools, alice, settings, monkeypatch):
    settings.MCP_CONFIG = {
        **settings.MCP_CONFIG,
        "WS_MAX_CONNECTIONS_PER_USER": LIMIT,
        "WS_IDLE_TIMEOUT_S": 0.2,
        "DELIVERY_POLL_S": 0.1,
    }
    seen: dict[str, int] = {}
    ended = 0
    for ending in itertools.cycle(ENDINGS):
        if ended >= CONNECTIONS:
            break
        how = await ending(alice, monkeypatch)
        seen[how] = seen.get(how, 0) + 1
        ended += LIMIT + 1 if how == "4429" else 1
        assert executions.slots.counts.get(alice.pk, 0) == 0, f"a slot was kept after {how}"
    assert set(seen) == {"client close", "4009", "4429", "4408", "4011", "crash", "gone mid-stream"}
    # Every slot is free: the user opens as many connections as allowed, and each works.
    comms = [await opened(alice) for _ in range(LIMIT)]
    for comm in comms:
        await send(comm, {"type": "ping", "request_id": "p"})
        assert await receive(comm) == {"type": "pong", "request_id": "p"}
    for comm in comms:
        await comm.disconnect()
    assert executions.slots.counts.get(alice.pk, 0) == 0
