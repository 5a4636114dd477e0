"""subscribe / unsubscribe / cancel over /ws/executions/ (embedded default)."""

from __future__ import annotations

import pytest

from mcp_tools.models import ToolExecution, ToolUsageStats
from tests.conftest import assert_contiguous, receive, receive_until_terminal, send, streamed_text

pytestmark = pytest.mark.django_db(transaction=True)

BIG_REPORT = {
    "type": "execute",
    "tool": "generate_report",
    "use_cache": False,
    "parameters": {"data": {f"field{i}": list(range(i, i + 5)) for i in range(40)}},
}


async def run_report(comm) -> tuple[str, list[dict]]:
    await send(comm, {"type": "execute", "tool": "generate_report", "parameters": {"data": {"a": [1, 2]}}})
    accepted = await receive(comm)
    return accepted["execution_id"], await receive_until_terminal(comm)


async def test_subscribe_after_seq_replays_only_later_events(tools, alice, connect):
    comm = await connect(alice)
    execution_id, events = await run_report(comm)
    await send(comm, {"type": "subscribe", "execution_id": execution_id, "after_seq": 2, "request_id": "s"})
    subscribed = await receive(comm)
    assert subscribed == {
        "type": "subscribed",
        "execution_id": execution_id,
        "last_seq": events[-1]["seq"],
        "epoch": events[-1]["epoch"],
        "request_id": "s",
    }
    replay = await receive_until_terminal(comm)
    assert replay == [e for e in events if e["seq"] > 2]


async def test_subscribe_from_zero_on_another_connection_replays_everything(tools, alice, connect):
    execution_id, events = await run_report(await connect(alice))
    other = await connect(alice)
    await send(other, {"type": "subscribe", "execution_id": execution_id})
    assert (await receive(other))["last_seq"] == len(events)
    assert await receive_until_terminal(other) == events


async def test_subscribe_mid_stream_then_live_has_no_gap_or_duplicate(tools, alice, connect, settings):
    settings.OFFLINE_DELAY_S = 0.003
    comm = await connect(alice)
    await send(comm, BIG_REPORT)
    execution_id = (await receive(comm))["execution_id"]
    first = [await receive(comm) for _ in range(4)]
    watcher = await connect(alice)
    await send(watcher, {"type": "subscribe", "execution_id": execution_id, "after_seq": first[-1]["seq"]})
    await receive(watcher)
    rest = await receive_until_terminal(watcher)
    assert_contiguous(first + rest)
    assert streamed_text(first + rest) == rest[-1]["result"]["report"]


async def test_unsubscribe_stops_delivery(tools, alice, connect, settings):
    settings.OFFLINE_DELAY_S = 0.003
    comm = await connect(alice)
    await send(comm, BIG_REPORT)
    execution_id = (await receive(comm))["execution_id"]
    await receive(comm)
    await send(comm, {"type": "unsubscribe", "execution_id": execution_id, "request_id": "u"})
    while (message := await receive(comm))["type"] != "unsubscribed":
        assert message["type"].startswith("execution.")
    assert message == {"type": "unsubscribed", "execution_id": execution_id, "request_id": "u"}
    await send(comm, {"type": "ping"})
    assert await receive(comm) == {"type": "pong"}


async def test_cancel_stops_the_stream_and_ends_with_cancelled(tools, alice, connect, settings):
    settings.OFFLINE_DELAY_S = 0.01
    comm = await connect(alice)
    await send(comm, BIG_REPORT)
    execution_id = (await receive(comm))["execution_id"]
    seen = [await receive(comm) for _ in range(3)]
    await send(comm, {"type": "cancel", "execution_id": execution_id})
    rest = await receive_until_terminal(comm)
    assert rest[-1]["type"] == "execution.cancelled"
    assert_contiguous(seen + rest)
    execution = await ToolExecution.objects.aget(pk=execution_id)
    assert execution.status == "cancelled" and execution.result is None
    assert execution.events[-1]["type"] == "execution.cancelled"
    stats = await ToolUsageStats.objects.aget(tool__name="generate_report")
    assert (stats.total_executions, stats.cancelled_executions) == (1, 1)
    await send(comm, {"type": "ping"})
    assert await receive(comm) == {"type": "pong"}  # nothing followed the terminal event


async def test_cancel_after_the_end_changes_nothing_and_sends_nothing(tools, alice, connect):
    comm = await connect(alice)
    execution_id, events = await run_report(comm)
    await send(comm, {"type": "cancel", "execution_id": execution_id, "request_id": "c"})
    await send(comm, {"type": "ping", "request_id": "after"})
    assert await receive(comm) == {"type": "pong", "request_id": "after"}
    execution = await ToolExecution.objects.aget(pk=execution_id)
    assert execution.status == "completed" and len(execution.events) == len(events)


async def test_a_user_allowed_to_view_all_executions_may_subscribe_to_anyones(tools, alice, operator, connect):
    execution_id, events = await run_report(await connect(alice))
    comm = await connect(operator)
    await send(comm, {"type": "subscribe", "execution_id": execution_id})
    await receive(comm)
    assert await receive_until_terminal(comm) == events


async def test_list_tools_answers_active_tools_with_schema(tools, alice, connect):
    comm = await connect(alice)
    await send(comm, {"type": "list_tools", "request_id": "l"})
    answer = await receive(comm)
    assert answer["type"] == "tools" and answer["request_id"] == "l"
    by_name = {t["name"]: t for t in answer["tools"]}
    assert set(by_name) == {"summarize_content", "generate_report", "my_usage", "service_health"}
    assert by_name["summarize_content"]["parameters_schema"]["required"] == ["url"]
    assert by_name["generate_report"]["description"]
