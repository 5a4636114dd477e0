"""/ws/monitor/: snapshot, then every user's status changes, no deltas unless subscribed."""

from __future__ import annotations

import pytest

from mcp_tools.models import Tool, ToolExecution
from tests.conftest import receive, receive_until_terminal, send

pytestmark = pytest.mark.django_db(transaction=True)


async def test_snapshot_lists_active_executions_and_stats(tools, alice, operator, connect):
    pending = await ToolExecution.objects.acreate(tool=await Tool.objects.aget(name="generate_report"), user=alice)
    monitor = await connect(operator, path="/ws/monitor/")
    snapshot = await receive(monitor)
    assert snapshot["type"] == "monitor.snapshot"
    assert [e["execution_id"] for e in snapshot["executions"]] == [str(pending.pk)]
    entry = snapshot["executions"][0]
    assert (entry["tool"], entry["user"], entry["status"]) == ("generate_report", "alice", "pending")
    assert entry["created_at"]
    assert set(snapshot["stats"]) == {"generate_report", "summarize_content", "my_usage", "service_health"}
    assert snapshot["stats"]["generate_report"]["total_executions"] == 0


async def test_feed_shows_other_users_status_changes_without_deltas(tools, alice, operator, connect):
    monitor = await connect(operator, path="/ws/monitor/")
    await receive(monitor)
    comm = await connect(alice)
    await send(comm, {"type": "execute", "tool": "generate_report", "parameters": {"data": {"x": 1}}})
    execution_id = (await receive(comm))["execution_id"]
    await receive_until_terminal(comm)
    feed = await receive_until_terminal(monitor)
    assert [e["type"] for e in feed] == ["execution.status", "execution.status", "execution.completed"]
    assert [e["status"] for e in feed] == ["pending", "running", "completed"]
    assert all(
        e["execution_id"] == execution_id and e["user"] == "alice" and e["tool"] == "generate_report" for e in feed
    )
    assert feed[-1]["duration_ms"] >= 0


async def test_monitor_subscribe_adds_deltas_once(tools, alice, operator, connect, settings):
    settings.OFFLINE_DELAY_S = 0.005
    monitor = await connect(operator, path="/ws/monitor/")
    await receive(monitor)
    comm = await connect(alice)
    await send(
        comm,
        {
            "type": "execute",
            "tool": "generate_report",
            "use_cache": False,
            "parameters": {"data": {f"k{i}": i for i in range(30)}},
        },
    )
    execution_id = (await receive(comm))["execution_id"]
    first = await receive(monitor)
    assert first["status"] == "pending"
    await send(monitor, {"type": "subscribe", "execution_id": execution_id})
    messages = await receive_until_terminal(monitor)
    events = [first] + [m for m in messages if m["type"] != "subscribed"]
    # The feed sent seq 1; the subscription replays the rest and then goes live: every seq once, in order.
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert any(e["type"] == "execution.delta" for e in events)
    assert all(
        e["tool"] == "generate_report" and e["user"] == "alice" for e in events if e["type"] != "execution.delta"
    )
