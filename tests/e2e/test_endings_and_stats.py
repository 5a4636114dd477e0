"""A client that sees an execution end finds its row and the tool's statistics already final.

For every kind of ending — completed, failed, cancelled, timed out, answered
from the cache — a client follows an execution to its terminal event and at
once reads the row and ``ToolUsageStats``: the row says what the event said,
and the counters already count it (docs/design.md, "Endings": one
transaction, then the event is sent). Many times, with the CPU kept busy by
other processes, on both topologies.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from asgiref.sync import sync_to_async

from mcp_tools.models import Tool, ToolExecution, ToolUsageStats
from tests.conftest import receive_until_terminal, send
from tests.e2e.helpers import recv, recv_until, ws_connect
from tests.e2e.helpers import send as ws_send

pytestmark = pytest.mark.django_db(transaction=True)

ROUNDS = 8
KINDS = ("completed", "failed", "cancelled", "timed out", "cache hit")
BLOCKED = "http://169.254.169.254/latest/meta-data/"  # the SSRF guard refuses it whatever the settings


@contextmanager
def busy_cpu(processes: int = 2) -> Iterator[None]:
    """Other processes spinning on every core while the test runs."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def request_for(kind: str, round_: int) -> dict:
    if kind == "failed":
        return {"type": "execute", "tool": "summarize_content", "parameters": {"url": BLOCKED}, "use_cache": False}
    data = {"kind": kind, "round": round_} if kind != "cache hit" else {"kind": "cached"}
    return {
        "type": "execute",
        "tool": "generate_report",
        "parameters": {"data": data},
        "use_cache": kind == "cache hit",
    }


def expected_status(kind: str) -> str:
    return {
        "completed": "completed",
        "failed": "failed",
        "cancelled": "cancelled",
        "timed out": "failed",
        "cache hit": "completed",
    }[kind]


def counters() -> Counter:
    totals: Counter = Counter()
    for row in ToolUsageStats.objects.all():
        totals.update(
            total=row.total_executions,
            completed=row.successful_executions,
            failed=row.failed_executions,
            cancelled=row.cancelled_executions,
            cached=row.cached_executions,
        )
    return totals


def what_one_ending_adds(kind: str) -> Counter:
    status = expected_status(kind)
    return Counter(total=1, **{status: 1}, **({"cached": 1} if kind == "cache hit" else {}))


def check_row_and_stats(terminal: dict, kind: str, expected: Counter) -> None:
    row = ToolExecution.objects.get(pk=terminal["execution_id"])
    assert terminal["status"] == row.status == expected_status(kind), (kind, terminal, row.status)
    if kind == "timed out":
        assert row.error_code == "timeout"
    assert counters() == expected, (kind, counters(), expected)


def prepare(kind: str) -> None:
    Tool.objects.filter(name="generate_report").update(timeout=1 if kind == "timed out" else 120)


# --- Embedded default: the in-process worker, channels' communicator -------------------------------------


async def test_every_ending_is_final_in_the_row_and_the_stats_when_the_client_sees_it(tools, alice, connect, settings):
    settings.OFFLINE_DELAY_S = 0.01
    comm = await connect(alice)
    await send(comm, request_for("cache hit", 0))  # a first run puts the result in the cache
    await receive_until_terminal(comm)
    expected = await sync_to_async(counters)()
    with busy_cpu():
        for round_ in range(ROUNDS):
            for kind in KINDS:
                await sync_to_async(prepare)(kind)
                settings.OFFLINE_DELAY_S = 0.05 if kind in ("cancelled", "timed out") else 0.01
                await send(comm, request_for(kind, round_))
                accepted = await receive_until_terminal_or_accepted(comm)
                if kind == "cancelled":
                    await wait_for_delta(comm, accepted["execution_id"])
                    await send(comm, {"type": "cancel", "execution_id": accepted["execution_id"]})
                events = await receive_until_terminal(comm, timeout=30)
                expected += what_one_ending_adds(kind)
                await sync_to_async(check_row_and_stats)(events[-1], kind, expected)


async def receive_until_terminal_or_accepted(comm) -> dict:
    from tests.conftest import receive

    while (message := await receive(comm))["type"] != "execution.accepted":
        assert message["type"] != "error", message
    return message


async def wait_for_delta(comm, execution_id: str) -> None:
    from tests.conftest import receive

    while (message := await receive(comm))["type"] != "execution.delta":
        assert message["execution_id"] == execution_id


# --- Production topology: daphne, a worker process, Redis, PostgreSQL ---------------------------------------


@pytest.mark.production
def test_every_ending_is_final_in_the_row_and_the_stats_through_the_production_stack(stack, tools, alice):
    with ws_connect(stack.ws_url, alice.auth_token.key) as ws, busy_cpu():
        ws_send(ws, request_for("cache hit", 0))  # a first run puts the result in the cache
        recv_until(ws, lambda m: m["type"] == "execution.completed")
        expected = counters()
        for round_ in range(ROUNDS):
            for kind in KINDS:
                prepare(kind)
                slow = kind in ("cancelled", "timed out")
                stack.anthropic.set_default({"tokens": 200, "delay_ms": 20} if slow else {"tokens": 10})
                ws_send(ws, request_for(kind, round_))
                accepted = recv_until(ws, lambda m: m["type"] in ("execution.accepted", "error"))[-1]
                assert accepted["type"] == "execution.accepted", accepted
                if kind == "cancelled":
                    recv_until(ws, lambda m: m["type"] == "execution.delta")
                    ws_send(ws, {"type": "cancel", "execution_id": accepted["execution_id"]})
                terminal = recv_until(
                    ws, lambda m: m["type"] in ("execution.completed", "execution.failed", "execution.cancelled")
                )[-1]
                expected += what_one_ending_adds(kind)
                check_row_and_stats(terminal, kind, expected)
        ws_send(ws, {"type": "ping", "request_id": "after"})
        assert recv(ws) == {"type": "pong", "request_id": "after"}
