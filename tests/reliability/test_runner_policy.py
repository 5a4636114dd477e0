"""Retry policy, time limits and the reaper, with the real SDK against the fake API."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from mcp_tools import services
from mcp_tools.eventlog import get_event_log
from mcp_tools.events import ExecutionPublisher
from mcp_tools.liveness import Heartbeat, executions_reap
from mcp_tools.models import Tool, ToolExecution, ToolUsageStats
from tests.conftest import assert_contiguous, streamed_text

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def claude(fake_anthropic, settings):
    settings.LLM_PROVIDER = "anthropic"
    settings.ANTHROPIC_API_KEY = "test-key"
    settings.ANTHROPIC_BASE_URL = fake_anthropic.url
    settings.ANTHROPIC_TIMEOUT_S = 2
    settings.MCP_CONFIG = {**settings.MCP_CONFIG, "RETRY_BACKOFF_S": 0.01, "RETRY_BACKOFF_MAX_S": 0.05}
    return fake_anthropic


def run_inline(alice) -> ToolExecution:
    execution = services.execution_start(user=alice, tool_name="generate_report", parameters={"data": {"a": 1}},
                                         use_cache=False, inline=True)
    execution.refresh_from_db()
    return execution


def statuses(execution: ToolExecution) -> list[str]:
    return [e.get("status", e["type"]) for e in execution.events if e["type"] != "execution.delta"]


@pytest.mark.parametrize("fault", [
    {"status": 529}, {"status": 429, "retry_after": "0"}, {"status": 500}, {"tokens": 30, "error_after": 5},
    {"tokens": 30, "drop_after": 5}, {"tokens": 30, "stall_after": 5, "stall_s": 5},
])
def test_transient_failure_is_retried_and_announced_then_completes(tools, alice, claude, fault):
    claude.set_script([fault])
    claude.set_default({"tokens": 12})
    execution = run_inline(alice)
    assert execution.status == "completed" and execution.attempt == 2
    assert statuses(execution) == ["pending", "running", "retrying", "running", "completed"]
    retrying = next(e for e in execution.events if e.get("status") == "retrying")
    assert retrying["attempt"] == 2 and retrying["reason"].startswith(("llm_", "fetch_"))
    assert_contiguous(execution.events)
    assert streamed_text(execution.events) == execution.result["report"] == "".join(f"w{i} " for i in range(12))


def test_permanent_failure_fails_at_once_without_retry(tools, alice, claude):
    claude.set_default({"status": 400, "error_type": "invalid_request_error"})
    execution = run_inline(alice)
    assert execution.status == "failed" and execution.error_code == "llm_error" and execution.attempt == 1
    assert statuses(execution) == ["pending", "running", "failed"]
    assert len(claude.requests) == 1


def test_retries_exhausted_fail_once_with_the_last_reason(tools, alice, claude, settings):
    settings.MCP_CONFIG = {**settings.MCP_CONFIG, "MAX_RETRIES": 2}
    claude.set_default({"status": 529})
    execution = run_inline(alice)
    assert execution.status == "failed" and execution.error_code == "llm_overloaded"
    assert statuses(execution) == ["pending", "running", "retrying", "running", "retrying", "running", "failed"]
    stats = ToolUsageStats.objects.get(tool__name="generate_report")
    assert (stats.total_executions, stats.failed_executions) == (1, 1)  # never "failed, then retried"


def test_tool_timeout_fails_cleanly_with_code_timeout(tools, alice, claude):
    Tool.objects.filter(name="generate_report").update(timeout=1)
    claude.set_default({"tokens": 400, "delay_ms": 10})
    execution = run_inline(alice)
    assert execution.status == "failed" and execution.error_code == "timeout"
    assert execution.events[-1]["type"] == "execution.failed"
    assert claude.wait_for_requests(1)[0]["disconnected_early"]  # the Claude stream was closed


def test_reaper_fails_a_running_execution_whose_worker_vanished(tools, alice, settings):
    settings.MCP_CONFIG = {**settings.MCP_CONFIG, "HEARTBEAT_STALE_S": 5}
    execution = ToolExecution.objects.create(tool=Tool.objects.get(name="generate_report"), user=alice,
                                             status="running", started_at=timezone.now() - timedelta(seconds=60))
    alive = ToolExecution.objects.create(tool=execution.tool, user=alice, status="running",
                                         started_at=timezone.now() - timedelta(seconds=60))
    publisher = ExecutionPublisher(execution_id=str(execution.pk), tool="generate_report", user="alice")
    publisher.status("pending")
    with Heartbeat(str(alive.pk)):
        assert executions_reap() == {"failed": 1}
    execution.refresh_from_db()
    assert execution.status == "failed" and execution.error_code == "worker_lost"
    assert [e["seq"] for e in execution.events] == [1, 2]
    assert ToolExecution.objects.get(pk=alive.pk).status == "running"
    assert executions_reap() == {"failed": 1}  # the other one, once its heartbeat is gone
    assert executions_reap() == {}


def test_reaper_repairs_a_row_whose_final_write_was_lost(tools, alice, settings):
    settings.MCP_CONFIG = {**settings.MCP_CONFIG, "HEARTBEAT_STALE_S": 5}
    execution = ToolExecution.objects.create(tool=Tool.objects.get(name="generate_report"), user=alice,
                                             status="running", started_at=timezone.now() - timedelta(seconds=60))
    log = get_event_log()
    log.append(str(execution.pk), {"type": "execution.status", "status": "pending"})
    log.append(str(execution.pk), {"type": "execution.completed", "status": "completed", "result": {"report": "r"},
                                   "duration_ms": 7, "cached": False})
    assert executions_reap() == {"repaired": 1}
    execution.refresh_from_db()
    assert (execution.status, execution.result, execution.duration_ms) == ("completed", {"report": "r"}, 7)
