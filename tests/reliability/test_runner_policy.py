"""Retry policy, time limits, cancel and the reaper, with the real SDK against the fake API."""

from __future__ import annotations

import uuid

import pytest
from django.core.cache import cache

from mcp_tools import services
from mcp_tools.engine import liveness
from mcp_tools.events import Entry, completed_event, get_event_log, status_event
from mcp_tools.models import Tool, ToolExecution, ToolUsageStats
from tests.conftest import assert_contiguous, run_now, streamed_text

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def tokens(monkeypatch) -> list[ToolExecution]:
    """The Celery tokens sent (on enqueue, and by the reaper), recorded instead of sent.

    An embedded worker started by an earlier test in this process is still
    consuming: a real token would have it claim the execution while the test
    reads the state it expects (it did, twice, in CI: the enqueue's token).
    """
    sent: list[ToolExecution] = []
    monkeypatch.setattr(services, "execution_send_tokens", sent.extend)
    monkeypatch.setattr(liveness, "execution_send_tokens", sent.extend)
    return sent


@pytest.fixture
def claude(fake_anthropic, settings):
    settings.LLM_PROVIDER = "anthropic"
    settings.ANTHROPIC_API_KEY = "test-key"
    settings.ANTHROPIC_BASE_URL = fake_anthropic.url
    settings.ANTHROPIC_TIMEOUT_S = 2
    settings.MCP_CONFIG = {**settings.MCP_CONFIG, "RETRY_BACKOFF_S": 0.01, "RETRY_BACKOFF_MAX_S": 0.05}
    return fake_anthropic


def run_inline(alice) -> ToolExecution:
    return run_now(alice, "generate_report", {"data": {"a": 1}})


def statuses(execution: ToolExecution) -> list[str]:
    return [e.get("status", e["type"]) for e in execution.events if e["type"] != "execution.delta"]


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 529},
        {"status": 429, "retry_after": "0"},
        {"status": 500},
        {"tokens": 30, "error_after": 5},
        {"tokens": 30, "drop_after": 5},
        {"tokens": 30, "stall_after": 5, "stall_s": 5},
    ],
)
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


def running_on(user, *, worker: str, attempt: int = 1, queued: bool = True) -> ToolExecution:
    """An execution that a (possibly dead) engine ``worker`` is running, attempt ``attempt``."""
    execution = services.execution_prepare(user=user, tool_name="generate_report", parameters={"data": {"n": 1}})
    ToolExecution.objects.filter(pk=execution.pk).update(
        status="running", worker=worker, attempt=attempt, celery_task_id=str(uuid.uuid4()) if queued else None
    )
    services.writer_for(execution).append([status_event("running", attempt=attempt)], attempt=attempt)
    execution.refresh_from_db()
    return execution


def test_reaper_runs_again_what_a_dead_engine_was_running_announced_as_a_retry(tools, alice, tokens):
    lost = running_on(alice, worker="gone:1:dead")
    cache.set(liveness.heartbeat_key("here:2:alive"), 1, timeout=60)
    alive = running_on(alice, worker="here:2:alive")
    assert liveness.reap(free_slots=0) == {"requeued": 1}
    assert [str(e.pk) for e in tokens] == [str(lost.pk)]
    lost.refresh_from_db()
    assert (lost.status, lost.worker, lost.attempt) == ("retrying", "", 1)
    events = get_event_log().read(str(lost.pk)).events
    assert [(e.get("status"), e.get("attempt"), e.get("reason")) for e in events] == [
        ("pending", None, None),
        ("running", 1, None),
        ("retrying", 2, "worker_lost"),
    ]
    assert ToolExecution.objects.get(pk=alive.pk).status == "running"
    # The lost engine, if it was only cut off, can no longer write: a newer attempt announced itself.
    [stale] = services.writer_for(lost).append([status_event("running", attempt=1)], attempt=1)
    assert stale.seq is None and stale.refused.name == "STALE"
    assert liveness.reap(free_slots=0) == {}  # nothing twice


@pytest.mark.parametrize(
    "case,expected",
    [
        ("not repeatable", "its tool is not safe to repeat"),
        ("attempts used up", "no attempts left"),
        ("run by run_tool", "manage.py run_tool"),
    ],
)
def test_reaper_fails_with_worker_lost_what_must_not_run_again(tools, alice, settings, case, expected):
    settings.MCP_CONFIG = {**settings.MCP_CONFIG, "MAX_RETRIES": 3}
    if case == "not repeatable":
        Tool.objects.filter(name="generate_report").update(repeatable=False)
    execution = running_on(
        alice, worker="gone:1:dead", attempt=4 if case == "attempts used up" else 1, queued=case != "run by run_tool"
    )
    assert liveness.reap(free_slots=0) == {"failed": 1}
    execution.refresh_from_db()
    assert execution.status == "failed" and execution.error_code == "worker_lost"
    assert expected in execution.error
    assert_contiguous(execution.events)
    assert ToolUsageStats.objects.get(tool__name="generate_report").failed_executions == 1


def test_reaper_ends_as_cancelled_what_was_asked_to_cancel_when_its_engine_died(tools, alice):
    execution = running_on(alice, worker="gone:1:dead")
    services.execution_cancel(user=alice, execution_id=execution.pk)  # running elsewhere: only asked
    assert ToolExecution.objects.get(pk=execution.pk).status == "running"
    assert liveness.reap(free_slots=0) == {"cancelled": 1}
    assert ToolExecution.objects.get(pk=execution.pk).status == "cancelled"


def test_reaper_repairs_a_row_whose_final_write_was_lost(tools, alice):
    execution = running_on(alice, worker="gone:1:dead")
    get_event_log().append_many(
        [
            Entry(
                str(execution.pk),
                {
                    **completed_event({"report": "r"}, duration_ms=7, cached=False, attempt=1),
                    "execution_id": str(execution.pk),
                },
                execution.epoch,
            )
        ]
    )
    assert liveness.reap(free_slots=0) == {"repaired": 1}
    execution.refresh_from_db()
    assert (execution.status, execution.result, execution.duration_ms) == ("completed", {"report": "r"}, 7)
    assert ToolUsageStats.objects.get(tool__name="generate_report").successful_executions == 1


def test_an_engine_with_room_replaces_tokens_a_broker_lost(tools, alice, settings, tokens):
    settings.MCP_CONFIG = {**settings.MCP_CONFIG, "PENDING_RESCUE_S": 0}
    services.execution_prepare(user=alice, tool_name="generate_report", parameters={"data": {}})  # not queued
    queued = services.execution_prepare(user=alice, tool_name="generate_report", parameters={"data": {"q": 1}})
    ToolExecution.objects.filter(pk=queued.pk).update(celery_task_id=str(uuid.uuid4()))
    assert liveness.reap(free_slots=0) == {}
    assert liveness.reap(free_slots=5) == {"tokens replaced": 1}
    assert [str(e.pk) for e in tokens] == [str(queued.pk)]


@pytest.mark.parametrize("queued", [False, True], ids=["run by its own process", "queued"])
def test_a_run_that_breaks_in_the_engine_is_ended_or_run_again_never_left_running(
    tools, alice, monkeypatch, tokens, queued
):
    """A defect in the engine (an exception no rule expects) is handled as a lost worker's run, at once."""
    from mcp_tools.engine import runner

    prepare = services.execution_start_uncached if queued else services.execution_prepare
    execution = prepare(user=alice, tool_name="generate_report", parameters={"data": {"a": 1}})

    async def broken(self):
        raise RuntimeError("a defect")

    monkeypatch.setattr(runner.Run, "run", broken)
    runner.run_here(str(execution.pk))

    execution.refresh_from_db()
    events = get_event_log().read(str(execution.pk)).events
    if queued:  # repeatable and queued: back in the queue as a new attempt, announced
        assert (execution.status, execution.worker) == ("retrying", "")
        assert (events[-1]["status"], events[-1]["reason"]) == ("retrying", "worker_lost")
        assert [str(e.pk) for e in tokens] == [str(execution.pk)] * 2  # the enqueue's, the requeue's
    else:  # run_tool's own process runs it: it cannot go back to a queue
        assert (execution.status, execution.error_code) == ("failed", "worker_lost")
        assert events[-1]["type"] == "execution.failed"
        assert tokens == []
