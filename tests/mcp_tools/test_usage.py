"""Tokens are recorded for every ending, as far as the provider reported them, and counted in the stats.

A cancelled, timed-out or failed run was still paid for: its row and
``ToolUsageStats`` carry the input tokens the stream's ``message_start``
reported (and the output tokens reported so far), summed over its attempts.
Driven through the real SDK against the fake Messages API.
"""

from __future__ import annotations

import threading

import pytest

from mcp_tools import services
from mcp_tools.events import get_event_log
from mcp_tools.models import Tool, ToolExecution, ToolUsageStats
from tests.conftest import run_now
from tests.stack import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

DATA = {"data": {"usage": [1, 2, 3]}}


@pytest.fixture
def claude(fake_anthropic, settings):
    settings.LLM_PROVIDER = "anthropic"
    settings.ANTHROPIC_API_KEY = "test-key"
    settings.ANTHROPIC_BASE_URL = fake_anthropic.url
    settings.ANTHROPIC_TIMEOUT_S = 5
    settings.MCP_CONFIG = {
        **settings.MCP_CONFIG,
        "RETRY_BACKOFF_S": 0.01,
        "RETRY_BACKOFF_MAX_S": 0.02,
        "MAX_RETRIES": 2,
    }
    return fake_anthropic


def prompt_tokens(claude) -> int:
    """What the fake reports as input tokens for the one prompt these tests send (its word count)."""
    return len(claude.requests[0]["body"]["messages"][0]["content"].split())


def stats() -> ToolUsageStats:
    return ToolUsageStats.objects.get(tool__name="generate_report")


def test_a_completed_run_counts_input_and_output_tokens(tools, alice, claude):
    claude.set_default({"tokens": 12})
    execution = run_now(alice, "generate_report", DATA)
    assert execution.status == "completed"
    assert (execution.input_tokens, execution.output_tokens) == (prompt_tokens(claude), 12)
    assert (stats().input_tokens, stats().output_tokens) == (execution.input_tokens, execution.output_tokens)
    assert execution.events[-1]["usage"] == {"input_tokens": execution.input_tokens, "output_tokens": 12}


def test_a_run_failing_mid_stream_keeps_what_the_provider_reported(tools, alice, claude):
    claude.set_default({"tokens": 30, "error_after": 5, "error_type": "invalid_request_error"})
    execution = run_now(alice, "generate_report", DATA)
    assert execution.status == "failed" and execution.error_code == "llm_error"
    assert (execution.input_tokens, execution.output_tokens) == (prompt_tokens(claude), 1)
    assert (stats().input_tokens, stats().failed_executions) == (execution.input_tokens, 1)


def test_every_attempt_is_paid_for_when_the_retries_run_out(tools, alice, claude):
    claude.set_default({"tokens": 30, "error_after": 3, "error_type": "overloaded_error"})
    execution = run_now(alice, "generate_report", DATA)
    assert execution.status == "failed" and execution.attempt == 3
    assert execution.input_tokens == 3 * prompt_tokens(claude) and execution.output_tokens == 3
    assert stats().input_tokens == execution.input_tokens


def test_a_run_past_its_time_limit_keeps_its_tokens(tools, alice, claude):
    Tool.objects.filter(name="generate_report").update(timeout=1)
    claude.set_default({"tokens": 400, "delay_ms": 10})
    execution = run_now(alice, "generate_report", DATA)
    assert execution.status == "failed" and execution.error_code == "timeout"
    assert (execution.input_tokens, execution.output_tokens) == (prompt_tokens(claude), 1)
    assert stats().input_tokens == execution.input_tokens


def test_a_cancelled_run_keeps_its_tokens(tools, alice, claude):
    claude.set_default({"tokens": 400, "delay_ms": 10})
    execution = services.execution_prepare(user=alice, tool_name="generate_report", parameters=DATA)
    runner = threading.Thread(target=lambda: run_now_of(execution))
    runner.start()
    wait_until(
        lambda: any(e["type"] == "execution.delta" for e in get_event_log().read(str(execution.pk)).events),
        timeout=20,
        what="the first delta",
    )
    services.execution_cancel(user=alice, execution_id=execution.pk)
    runner.join(30)
    execution.refresh_from_db()
    assert execution.status == "cancelled"
    assert (execution.input_tokens, execution.output_tokens) == (prompt_tokens(claude), 1)
    assert (stats().input_tokens, stats().cancelled_executions) == (execution.input_tokens, 1)
    assert claude.wait_for_requests(1)[0]["disconnected_early"]  # the Claude stream was closed


def run_now_of(execution: ToolExecution) -> None:
    from django.db import connection

    from mcp_tools.engine.runner import run_here

    try:
        run_here(str(execution.pk))
    finally:
        connection.close()
