"""The idle poll of many connections: one question for the whole process per tick, a read only where
the log moved on (``mcp_tools/log_heads.py``, docs/design.md "Delivery")."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async

from mcp_tools import services
from mcp_tools.events import Entry, get_event_log, status_event
from tests.conftest import receive, send

pytestmark = pytest.mark.django_db(transaction=True)

CONNECTIONS = 12


async def test_quiet_connections_ask_together_and_only_the_one_whose_log_moved_reads_it(
    tools, alice, connect, settings, monkeypatch
):
    settings.MCP_CONFIG = {**settings.MCP_CONFIG, "DELIVERY_POLL_S": 0.2, "WS_MAX_CONNECTIONS_PER_USER": CONNECTIONS}
    log = get_event_log()
    questions: list[list[str]] = []
    reads: list[str] = []
    heads, read = log.aheads, log.aread

    async def counted_heads(execution_ids):
        questions.append(list(execution_ids))
        return await heads(execution_ids)

    async def counted_read(execution_id, after_seq=0):
        reads.append(execution_id)
        return await read(execution_id, after_seq)

    monkeypatch.setattr(log, "aheads", counted_heads)
    monkeypatch.setattr(log, "aread", counted_read)

    executions = [
        await database_sync_to_async(services.execution_prepare)(
            user=alice, tool_name="generate_report", parameters={"data": {}}
        )
        for _ in range(CONNECTIONS)
    ]  # pending, seq 1 each; nobody runs them, so every cursor stays quiet
    comms = []
    for execution in executions:
        comm = await connect(alice)
        await send(comm, {"type": "subscribe", "execution_id": str(execution.pk)})
        assert (await receive(comm))["type"] == "subscribed"
        assert (await receive(comm))["status"] == "pending"
        comms.append(comm)
    everyone = {str(e.pk) for e in executions}

    async def ticks_asking_for_everyone(count: int) -> None:
        while sum(set(q) == everyone for q in questions) < count:
            await asyncio.sleep(0.02)

    await asyncio.wait_for(ticks_asking_for_everyone(1), timeout=10)
    reads.clear()
    asked_before = len(questions)
    await asyncio.wait_for(ticks_asking_for_everyone(4), timeout=10)
    # Three more ticks: each asked once, for all twelve at once; nothing moved on, so no log was read.
    assert [len(set(q)) for q in questions[asked_before:]] == [CONNECTIONS] * (len(questions) - asked_before)
    assert reads == []

    # One event reaches the log but never the channel layer: only its follower reads, and gets it.
    lost = executions[5]
    log.append_many(
        [Entry(str(lost.pk), {**status_event("running", attempt=1), "execution_id": str(lost.pk)}, lost.epoch)]
    )
    recovered = await receive(comms[5], timeout=5)
    assert (recovered["execution_id"], recovered["seq"], recovered["status"]) == (str(lost.pk), 2, "running")
    assert set(reads) == {str(lost.pk)}
    for comm in comms:
        await send(comm, {"type": "ping"})
        assert await receive(comm) == {"type": "pong"}
