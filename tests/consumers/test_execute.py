"""execute over /ws/executions/ on the embedded default (in-process worker)."""

from __future__ import annotations

import time

import pytest

from mcp_tools.models import ToolExecution, ToolUsageStats
from tests.conftest import assert_contiguous, receive, receive_until_terminal, send, streamed_text

pytestmark = pytest.mark.django_db(transaction=True)

REPORT = {
    "type": "execute",
    "tool": "generate_report",
    "parameters": {"data": {"sales": [3, 5, 8]}},
    "request_id": "r1",
}


async def test_execute_streams_accepted_status_deltas_and_result(tools, alice, connect):
    comm = await connect(alice)
    await send(comm, REPORT)
    accepted = await receive(comm)
    assert accepted["type"] == "execution.accepted"
    assert accepted["seq"] == 0 and accepted["request_id"] == "r1"
    assert accepted["tool"] == "generate_report" and accepted["status"] == "pending"
    events = await receive_until_terminal(comm)
    assert_contiguous(events)
    assert [e["status"] for e in events[:2]] == ["pending", "running"]
    completed = events[-1]
    assert completed["type"] == "execution.completed"
    assert completed["cached"] is False
    assert streamed_text(events) == completed["result"]["report"]
    assert completed["result"]["model"] == "offline"
    execution = await ToolExecution.objects.aget(pk=accepted["execution_id"])
    assert execution.status == "completed"
    assert execution.result == completed["result"]
    assert [e["seq"] for e in execution.events] == [e["seq"] for e in events]
    stats = await ToolUsageStats.objects.aget(tool__name="generate_report")
    assert stats.total_executions == 1 and stats.successful_executions == 1


async def test_second_identical_execute_is_answered_from_cache_and_still_recorded(tools, alice, connect):
    comm = await connect(alice)
    await send(comm, REPORT)
    await receive(comm)
    first = await receive_until_terminal(comm)
    await send(comm, REPORT)
    accepted = await receive(comm)
    second = await receive_until_terminal(comm)
    assert second[-1]["cached"] is True
    assert second[-1]["result"] == first[-1]["result"]
    assert streamed_text(second) == first[-1]["result"]["report"]
    assert_contiguous(second)
    assert await ToolExecution.objects.filter(user=alice).acount() == 2
    stats = await ToolUsageStats.objects.aget(tool__name="generate_report")
    assert (stats.total_executions, stats.cached_executions) == (2, 1)
    assert (await ToolExecution.objects.aget(pk=accepted["execution_id"])).cached is True


async def test_whoever_hears_completed_finds_the_result_cached_however_slow_the_cache(
    tools, alice, connect, monkeypatch
):
    """The result is stored before the terminal event goes out (it used to be stored after: a client
    that asked again the moment it heard ``completed`` missed the cache and ran the tool twice)."""
    from mcp_tools.engine import runner

    store = runner.result_cache_store

    def slow_store(*args):
        time.sleep(0.5)  # a slow cache (fault injection, not a wait): the store must still come first
        store(*args)

    monkeypatch.setattr(runner, "result_cache_store", slow_store)
    comm = await connect(alice)
    await send(comm, REPORT)
    await receive(comm)
    await receive_until_terminal(comm)
    await send(comm, REPORT)
    await receive(comm)
    assert (await receive_until_terminal(comm))[-1]["cached"] is True
    stats = await ToolUsageStats.objects.aget(tool__name="generate_report")
    assert (stats.total_executions, stats.cached_executions) == (2, 1)


async def test_a_cache_that_cannot_be_written_changes_nothing_but_the_next_answer(tools, alice, connect, monkeypatch):
    """The store comes just before the row's ending: a failing cache must not hold that ending up."""
    from mcp_tools import results_cache

    class Down:
        def get(self, *args, **kwargs):
            return None

        def set(self, *args, **kwargs):
            raise ConnectionError("the cache is down")

    monkeypatch.setattr(results_cache, "cache", Down())
    comm = await connect(alice)
    await send(comm, REPORT)
    accepted = await receive(comm)
    assert (await receive_until_terminal(comm))[-1]["type"] == "execution.completed"
    assert (await ToolExecution.objects.aget(pk=accepted["execution_id"])).status == "completed"
    monkeypatch.undo()
    await send(comm, REPORT)
    await receive(comm)
    assert (await receive_until_terminal(comm))[-1]["cached"] is False  # nothing was cached: it ran again
    stats = await ToolUsageStats.objects.aget(tool__name="generate_report")
    assert (stats.total_executions, stats.successful_executions, stats.cached_executions) == (2, 2, 0)


async def test_an_execute_repeated_with_its_idempotency_key_reattaches_to_the_same_execution(tools, alice, connect):
    first = await connect(alice)
    message = {
        "type": "execute",
        "tool": "generate_report",
        "parameters": {"data": {"k": 1}},
        "use_cache": False,
        "idempotency_key": "chat-42",
        "request_id": "one",
    }
    await send(first, message)
    accepted = await receive(first)
    events = await receive_until_terminal(first)
    # The client's connection broke; it sends the same request again, on a new one.
    second = await connect(alice)
    await send(second, {**message, "request_id": "two"})
    again = await receive(second)
    assert again["execution_id"] == accepted["execution_id"]
    assert again["reattached"] is True and again["status"] == "completed" and again["request_id"] == "two"
    assert await receive_until_terminal(second) == events  # from seq 1, the same events
    assert await ToolExecution.objects.filter(user=alice).acount() == 1
    await send(second, {**message, "parameters": {"data": {"k": 2}}, "request_id": "three"})
    conflict = await receive(second)
    assert (conflict["type"], conflict["code"], conflict["request_id"]) == ("error", "idempotency_conflict", "three")
    await send(second, {"type": "ping"})
    assert (await receive(second))["type"] == "pong"
