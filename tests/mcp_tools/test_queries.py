"""Database writes per execution do not grow with the number of tokens."""
from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from mcp_tools import services
from mcp_tools.models import ToolExecution

pytestmark = pytest.mark.django_db(transaction=True)


def queries_for_one_execution(fake_anthropic, settings, alice, tokens: int) -> int:
    settings.LLM_PROVIDER = "anthropic"
    settings.ANTHROPIC_API_KEY = "test-key"
    settings.ANTHROPIC_BASE_URL = fake_anthropic.url
    settings.MCP_CONFIG = {**settings.MCP_CONFIG, "COALESCE_BYTES": 64}
    # Paced (1 ms apart), so the run stores many deltas (the outbox would merge
    # an unpaced burst into a few big ones) and the count shows writes do not follow them.
    fake_anthropic.set_default({"tokens": tokens, "delay_ms": 1})
    with CaptureQueriesContext(connection) as captured:
        execution = services.execution_start(user=alice, tool_name="generate_report",
                                             parameters={"data": {"tokens": tokens}}, inline=True)
    execution.refresh_from_db()
    assert execution.status == ToolExecution.Status.COMPLETED
    assert execution.output_tokens == tokens
    assert sum(e["type"] == "execution.delta" for e in execution.events) > tokens // 100
    return len(captured.captured_queries)


def test_query_count_is_the_same_at_10_and_1000_tokens(tools, alice, fake_anthropic, settings):
    at_10 = queries_for_one_execution(fake_anthropic, settings, alice, 10)
    at_1000 = queries_for_one_execution(fake_anthropic, settings, alice, 1000)
    assert at_10 == at_1000
    assert at_10 <= 12
