"""The core flow in the production topology: daphne + celery worker processes,
Redis, PostgreSQL, the anthropic provider against the fake Messages API."""

from __future__ import annotations

import concurrent.futures

import pytest

from mcp_tools.models import ToolExecution, ToolUsageStats
from tests.conftest import assert_contiguous, streamed_text
from tests.e2e.helpers import page_server, recv, recv_until, recv_until_terminal, send, ws_connect
from tests.stack import wait_until

pytestmark = [pytest.mark.production, pytest.mark.django_db(transaction=True)]


def test_summarize_streams_accepted_running_deltas_completed_in_order(stack, tools, alice):
    stack.anthropic.set_default({"tokens": 60, "delay_ms": 2})
    with page_server() as url, ws_connect(stack.ws_url, alice.auth_token.key) as ws:
        send(ws, {"type": "execute", "tool": "summarize_content", "parameters": {"url": url}, "request_id": "a"})
        accepted = recv(ws)
        events = recv_until_terminal(ws)
    assert accepted["type"] == "execution.accepted" and accepted["request_id"] == "a"
    assert_contiguous(events)
    assert [e["status"] for e in events[:2]] == ["pending", "running"]
    assert sum(e["type"] == "execution.delta" for e in events) >= 1
    completed = events[-1]
    assert completed["type"] == "execution.completed" and completed["cached"] is False
    summary = completed["result"]["summary"]
    assert streamed_text(events) == summary == "".join(f"w{i} " for i in range(60))
    assert completed["result"]["url"] == url and completed["result"]["content_length"] > 100
    assert completed["result"]["usage"]["output_tokens"] == 60
    execution = ToolExecution.objects.get(pk=accepted["execution_id"])
    assert execution.status == "completed" and execution.result == completed["result"]
    assert execution.output_tokens == 60 and execution.user == alice
    assert [e["seq"] for e in execution.events] == [e["seq"] for e in events]
    stats = ToolUsageStats.objects.get(tool__name="summarize_content")
    assert (stats.total_executions, stats.successful_executions, stats.output_tokens) == (1, 1, 60)


def test_reconnect_mid_stream_resumes_without_gap_or_duplicate(stack, tools, alice):
    stack.anthropic.set_default({"tokens": 120, "delay_ms": 15})
    with ws_connect(stack.ws_url, alice.auth_token.key) as ws:
        send(ws, {"type": "execute", "tool": "generate_report", "parameters": {"data": {"k": 1}}})
        accepted = recv(ws)
        first = recv_until(ws, lambda m: m["type"] == "execution.delta" and m["seq"] >= 5)
    execution_id = accepted["execution_id"]
    last_seen = first[-1]["seq"]
    with ws_connect(stack.ws_url, alice.auth_token.key) as ws:
        send(ws, {"type": "subscribe", "execution_id": execution_id, "after_seq": last_seen, "request_id": "s"})
        subscribed = recv(ws)
        rest = recv_until_terminal(ws)
    assert subscribed["type"] == "subscribed" and subscribed["last_seq"] >= last_seen
    combined = first + rest
    assert_contiguous(combined)
    assert rest[-1]["type"] == "execution.completed"
    assert streamed_text(combined) == rest[-1]["result"]["report"]


def test_subscribe_after_the_end_replays_exactly_the_later_events(stack, tools, alice):
    with ws_connect(stack.ws_url, alice.auth_token.key) as ws:
        send(ws, {"type": "execute", "tool": "generate_report", "parameters": {"data": {"k": 2}}})
        accepted = recv(ws)
        events = recv_until_terminal(ws)
        wait_until(lambda: ToolExecution.objects.get(pk=accepted["execution_id"]).is_terminal, timeout=10)
        send(ws, {"type": "subscribe", "execution_id": accepted["execution_id"], "after_seq": 3})
        subscribed = recv(ws)
        replay = recv_until_terminal(ws)
    assert subscribed["last_seq"] == events[-1]["seq"]
    assert replay == [e for e in events if e["seq"] > 3]


def test_fifty_parallel_executions_count_exactly_fifty(stack, tools, alice):
    stack.anthropic.set_default({"tokens": 30})

    def run_one(index: int) -> dict:
        with ws_connect(stack.ws_url, alice.auth_token.key) as ws:
            send(
                ws,
                {
                    "type": "execute",
                    "tool": "generate_report",
                    "parameters": {"data": {"i": index}},
                    "use_cache": False,
                },
            )
            recv(ws)
            return recv_until_terminal(ws, timeout=120)[-1]

    before = ToolUsageStats.objects.get(tool__name="generate_report").total_executions
    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
        endings = list(pool.map(run_one, range(50)))
    assert [e["type"] for e in endings] == ["execution.completed"] * 50
    stats = ToolUsageStats.objects.get(tool__name="generate_report")
    assert stats.total_executions - before == 50
    assert stats.successful_executions == ToolExecution.objects.filter(status="completed").count()


def test_cancel_from_another_process_stops_the_claude_stream(stack, tools, alice):
    stack.anthropic.set_default({"tokens": 2000, "delay_ms": 10})
    with ws_connect(stack.ws_url, alice.auth_token.key) as ws:
        send(ws, {"type": "execute", "tool": "generate_report", "parameters": {"data": {"c": 1}}})
        execution_id = recv(ws)["execution_id"]
        seen = recv_until(ws, lambda m: m["type"] == "execution.delta")
        send(ws, {"type": "cancel", "execution_id": execution_id})
        rest = recv_until_terminal(ws)
        send(ws, {"type": "ping"})
        assert recv(ws) == {"type": "pong"}  # nothing after the terminal event
    assert rest[-1]["type"] == "execution.cancelled"
    assert_contiguous(seen + rest)
    wait_until(lambda: stack.anthropic.requests()[-1]["done"], timeout=10, what="the Claude stream to close")
    request = stack.anthropic.requests()[-1]
    assert request["disconnected_early"] and request["pieces_sent"] < 2000
    execution = ToolExecution.objects.get(pk=execution_id)
    assert execution.status == "cancelled" and execution.events[-1]["type"] == "execution.cancelled"
    assert ToolUsageStats.objects.get(tool__name="generate_report").cancelled_executions == 1
