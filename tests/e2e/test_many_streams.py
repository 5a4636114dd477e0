"""Two hundred concurrent streams through one worker process, every one exact (issue 19).

The production topology (``tests/stack.py``): daphne, ONE ``celery -A config
worker`` process started with the production command (the engine's pool and
concurrency from the settings), Redis, PostgreSQL, and the fake Messages API
driven through the real ``anthropic`` SDK. Two hundred WebSocket clients each
``execute`` a streaming tool at once.

That the streams really are concurrent in that one process is a condition,
not a hope about timing: the fake API holds every stream after its first
pieces (``hold_after``, with the pings the real API sends) until all two
hundred are held, the test sees two hundred rows running on that one worker,
and only then lets them go on.

For every execution: accepted; ``seq`` from 1 with no gap and no duplicate;
one terminal event, ``execution.completed``, last; the deltas joined equal
the result's streamed field exactly; nothing retried. Then the rows are
completed and ``ToolUsageStats`` counts exactly two hundred.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json

import pytest
from websockets.asyncio.client import connect

from mcp_tools.models import ToolExecution, ToolUsageStats
from tests.e2e.helpers import TERMINAL
from tests.stack import wait_until

pytestmark = [pytest.mark.production, pytest.mark.django_db(transaction=True)]

STREAMS = 200
TOKENS = 30
HELD_AFTER = 10  # pieces each stream sends before the fake API holds it
EXPECTED_TEXT = "".join(f"w{i} " for i in range(TOKENS))
# Handshakes in flight at once: daphne's listen backlog is 50, and a SYN dropped past it is retried a second later.
OPENING_AT_ONCE = 50
# Bounds that only end a broken run; a passing one takes seconds.
RECV_TIMEOUT_S = 60
ALL_HELD_TIMEOUT_S = 90
ALL_ENDED_TIMEOUT_S = 90


async def one_stream(ws_url: str, token: str, index: int, opening: asyncio.Semaphore) -> list[dict]:
    """Execute one stream and read it to its terminal event: every message, ``accepted`` first."""
    async with opening:
        ws = await connect(
            ws_url + "/ws/executions/",
            additional_headers={"Authorization": f"Token {token}"},
            open_timeout=RECV_TIMEOUT_S,
            max_size=2**22,
        )
    async with ws:
        await ws.send(
            json.dumps(
                {
                    "type": "execute",
                    "tool": "generate_report",
                    "request_id": str(index),
                    "parameters": {"data": {"stream": index}},
                    "use_cache": False,
                }
            )
        )
        messages: list[dict] = []
        while not messages or messages[-1]["type"] not in TERMINAL | {"error"}:
            messages.append(json.loads(await asyncio.wait_for(ws.recv(), RECV_TIMEOUT_S)))
        return messages


async def all_streams(ws_url: str, token: str) -> list[list[dict] | BaseException]:
    opening = asyncio.Semaphore(OPENING_AT_ONCE)
    return await asyncio.gather(
        *(one_stream(ws_url, token, index, opening) for index in range(STREAMS)), return_exceptions=True
    )


def check_stream(index: int, messages: list[dict]) -> str:
    """Everything one client saw is exact; returns its execution's id."""
    accepted, events = messages[0], messages[1:]
    assert accepted["type"] == "execution.accepted" and accepted["request_id"] == str(index), accepted
    execution_id = accepted["execution_id"]
    assert {e["execution_id"] for e in events} == {execution_id}
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), [e["seq"] for e in events]
    assert [e["type"] for e in events if e["type"] in TERMINAL] == ["execution.completed"]
    completed = events[-1]
    assert completed["type"] == "execution.completed" and completed["cached"] is False
    statuses = [e["status"] for e in events if e["type"] == "execution.status"]
    assert statuses == ["pending", "running"], statuses  # nothing retried, no new epoch
    streamed = "".join(e["text"] for e in events if e["type"] == "execution.delta")
    assert streamed == completed["result"]["report"] == EXPECTED_TEXT
    return execution_id


def test_two_hundred_concurrent_streams_through_one_worker_process_are_each_exact(stack, tools, alice):
    workers = [w for w in stack.workers if w.popen.poll() is None]
    assert len(workers) == 1, [w.name for w in workers]
    worker_pid = str(workers[0].popen.pid)
    stack.anthropic.set_default({"tokens": TOKENS, "hold_after": HELD_AFTER})

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as clients_thread:
        clients = clients_thread.submit(asyncio.run, all_streams(stack.ws_url, alice.auth_token.key))
        try:
            wait_until(
                lambda: clients.done() or sum(bool(r.get("holding")) for r in stack.anthropic.requests()) == STREAMS,
                timeout=ALL_HELD_TIMEOUT_S,
                interval=0.2,
                what=f"{STREAMS} streams held at once",
            )
            assert not clients.done(), str(clients.result())[:3000]
            running = ToolExecution.objects.filter(status="running")
            assert running.count() == STREAMS
            assert {w.split(":")[1] for w in running.values_list("worker", flat=True)} == {worker_pid}
        finally:
            stack.anthropic.release()  # also when the check failed: the clients then end instead of waiting
        outcomes = clients.result(timeout=ALL_ENDED_TIMEOUT_S)

    failures = [(i, o) for i, o in enumerate(outcomes) if isinstance(o, BaseException)]
    assert not failures, failures[:5]
    ids = [check_stream(index, messages) for index, messages in enumerate(outcomes)]
    assert len(set(ids)) == STREAMS
    assert len(stack.anthropic.requests()) == STREAMS  # one Claude stream each: no retry anywhere

    # The client saw the terminal event after the row and the statistics were written: both are final now.
    rows = ToolExecution.objects.filter(pk__in=ids)
    assert rows.count() == STREAMS
    assert rows.filter(status="completed", cached=False, attempt=1, output_tokens=TOKENS).count() == STREAMS
    by_id = {str(row.pk): row for row in rows}
    for execution_id, messages in zip(ids, outcomes, strict=True):
        assert [(e["seq"], e["type"]) for e in by_id[execution_id].events] == [
            (e["seq"], e["type"]) for e in messages[1:]
        ]
    stats = ToolUsageStats.objects.get(tool__name="generate_report")
    assert (
        stats.total_executions,
        stats.successful_executions,
        stats.failed_executions,
        stats.cancelled_executions,
        stats.cached_executions,
    ) == (STREAMS, STREAMS, 0, 0, 0)
    assert stats.output_tokens == STREAMS * TOKENS
