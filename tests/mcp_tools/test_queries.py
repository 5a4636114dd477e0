"""Database writes per execution do not grow with the number of tokens.

The engine writes from its own threads, so every connection opened while the
execution runs (in any thread) counts its queries.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

import pytest
from django.db import connection
from django.db.backends.signals import connection_created

from mcp_tools.engine.loop import stop_engine
from mcp_tools.models import ToolExecution
from tests.conftest import run_now

pytestmark = pytest.mark.django_db(transaction=True)


@contextmanager
def every_query():
    """Count the queries of every database connection, in every thread, while inside."""
    counted: list[str] = []
    lock = threading.Lock()

    def count(execute, sql, params, many, context):
        with lock:
            counted.append(sql)
        return execute(sql, params, many, context)

    def hook(sender, connection, **kwargs):
        # Once per connection object: an engine thread's connection reconnects for every call (CONN_MAX_AGE=0),
        # and appending again would count its later queries twice, depending on which thread ran what.
        if count not in connection.execute_wrappers:
            connection.execute_wrappers.append(count)

    connection_created.connect(hook)
    connection.close()  # this thread reconnects, with the hook
    try:
        yield counted
    finally:
        connection_created.disconnect(hook)


def queries_for_one_execution(fake_anthropic, settings, alice, tokens: int) -> int:
    settings.LLM_PROVIDER = "anthropic"
    settings.ANTHROPIC_API_KEY = "test-key"
    settings.ANTHROPIC_BASE_URL = fake_anthropic.url
    # No reaper pass in the middle (its reads are the engine's, not the execution's).
    settings.MCP_CONFIG = {**settings.MCP_CONFIG, "COALESCE_BYTES": 64, "REAPER_INTERVAL_S": 3600}
    # Paced (1 ms apart), so the run stores many deltas (an unpaced burst would be
    # merged into a few big ones) and the count shows writes do not follow them.
    fake_anthropic.set_default({"tokens": tokens, "delay_ms": 1})
    # An engine made before these settings (the embedded worker makes one for any token) keeps its
    # own reaper interval: start afresh, with this one.
    stop_engine(grace_s=5)
    with every_query() as counted:
        execution = run_now(alice, "generate_report", {"data": {"tokens": tokens}})
    assert execution.status == ToolExecution.Status.COMPLETED
    assert execution.output_tokens == tokens
    assert sum(e["type"] == "execution.delta" for e in execution.events) > tokens // 100
    return len(counted)


def test_query_count_is_the_same_at_10_and_1000_tokens(tools, alice, fake_anthropic, settings):
    at_10 = queries_for_one_execution(fake_anthropic, settings, alice, 10)
    at_1000 = queries_for_one_execution(fake_anthropic, settings, alice, 1000)
    assert at_10 == at_1000
    assert at_10 <= 16
