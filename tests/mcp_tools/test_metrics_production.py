"""``/metrics`` on the production topology: one scrape of daphne shows what daphne and the worker counted.

An execution is recorded (and a cache answer ended) in the daphne process and
run, timed and ended in the ``celery worker`` process; both write to the
stack's ``PROMETHEUS_MULTIPROC_DIR``. The stack lives for the whole session,
so the assertions are about what this test's workload added.
"""

from __future__ import annotations

import os
import threading
import urllib.error
import urllib.request
from pathlib import Path

import anyio
import httpx
import pytest

from mcp_tools.models import ToolExecution
from mcp_tools.results_cache import result_cache_lookup
from tests.e2e.helpers import recv_until, recv_until_terminal, send, ws_connect
from tests.mcp.helpers import http_session
from tests.mcp_tools.scrape import Scrape, deltas, grown
from tests.stack import wait_until

pytestmark = [pytest.mark.production, pytest.mark.django_db(transaction=True)]

GR = "generate_report"


def fetch(stack, authorization: str | None) -> tuple[int, str]:
    request = urllib.request.Request(
        stack.http_url + "/metrics", headers={"Authorization": authorization} if authorization else {}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def scrape(stack) -> Scrape:
    status, body = fetch(stack, "Bearer " + stack.env["METRICS_BEARER_TOKEN"])
    assert status == 200, body
    return Scrape.parse(body)


def execute(stack, user, tool: str, parameters: dict) -> dict:
    response = httpx.post(
        f"{stack.http_url}/api/tools/{tool}/execute/",
        json={"parameters": parameters},
        headers={"Authorization": f"Token {user.auth_token.key}"},
        timeout=60,
    )
    body = response.json()
    return body.get("execution", body)


def test_one_scrape_counts_a_known_workload_of_daphne_and_the_worker(stack, tools, alice, staff):
    wait_until(
        lambda: not ToolExecution.objects.filter(status__in=ToolExecution.ACTIVE_STATUSES).exists(),
        timeout=60,
        what="earlier tests' executions to end",
    )
    before = scrape(stack)

    # Run by the worker, then answered from the cache by daphne; a failure in the worker.
    ran = execute(stack, alice, GR, {"data": {"metrics": [1, 2]}})
    assert ran["status"] == "completed", ran
    wait_until(lambda: result_cache_lookup(GR, ran["parameters"]), timeout=20, what="the result in the cache")
    answered = execute(stack, alice, GR, {"data": {"metrics": [1, 2]}})
    assert answered["cached"] is True
    failed = execute(stack, alice, "summarize_content", {"url": "ftp://files.example/notes"})
    assert failed["error_code"] == "invalid_url"

    # A slow run followed over a WebSocket and an event stream, scraped while both are open, then cancelled.
    stack.anthropic.set_default({"tokens": 400, "delay_ms": 20})
    with ws_connect(stack.ws_url, alice.auth_token.key) as ws:
        send(ws, {"type": "execute", "tool": GR, "parameters": {"data": {"slow": True}}})
        ws_events = recv_until(ws, lambda m: m["type"] == "execution.delta")
        execution_id = ws_events[0]["execution_id"]
        first_delta = threading.Event()
        streamed: list[str] = []

        def follow_events() -> None:
            with httpx.stream(
                "GET",
                f"{stack.http_url}/api/executions/{execution_id}/events/",
                headers={"Authorization": f"Token {alice.auth_token.key}"},
                timeout=60,
            ) as response:
                for line in response.iter_lines():
                    streamed.append(line)
                    if line == "event: execution.delta":
                        first_delta.set()

        follower = threading.Thread(target=follow_events, daemon=True)
        follower.start()
        assert first_delta.wait(20)
        during = scrape(stack)
        assert grown(during, before, "mcp_tools_connections", transport="websocket") == 1
        assert grown(during, before, "mcp_tools_connections", transport="sse") == 1
        send(ws, {"type": "cancel", "execution_id": execution_id})
        ws_events += recv_until_terminal(ws)
        assert ws_events[-1]["type"] == "execution.cancelled"
        follower.join(30)
        assert not follower.is_alive()
    stack.anthropic.set_default({"tokens": 20})

    # An MCP tools/call, its text sent as progress.
    async def call_over_mcp():
        async with http_session(stack.http_url + "/mcp", alice.auth_token.key) as session:
            return await session.call_tool(GR, {"data": {"over": "mcp"}}, progress_callback=_ignore)

    assert not anyio.run(call_over_mcp).is_error

    runs = list(ToolExecution.objects.filter(tool__name=GR, cached=False, created_at__gte=_created(ran)))
    assert sorted(run.status for run in runs) == ["cancelled", "completed", "completed"]
    mcp_run = next(run for run in runs if run.parameters == {"data": {"over": "mcp"}})
    slow_run = next(run for run in runs if run.status == "cancelled")
    settled = wait_until(lambda: _settled(scrape(stack), before), timeout=20, what="connections closed")

    after = settled
    assert grown(after, before, "mcp_tools_executions_started_total", tool=GR) == 4
    assert grown(after, before, "mcp_tools_executions_started_total", tool="summarize_content") == 1
    assert grown(after, before, "mcp_tools_executions_ended_total", tool=GR, status="completed", error_code="") == 3
    assert grown(after, before, "mcp_tools_executions_ended_total", tool=GR, status="cancelled", error_code="") == 1
    assert (
        grown(
            after,
            before,
            "mcp_tools_executions_ended_total",
            tool="summarize_content",
            status="failed",
            error_code="invalid_url",
        )
        == 1
    )
    # Measured in the worker: queue waits of the four queued, first text of the three that streamed.
    assert grown(after, before, "mcp_tools_execution_queue_wait_seconds_count", tool=GR) == 3
    assert grown(after, before, "mcp_tools_execution_queue_wait_seconds_count", tool="summarize_content") == 1
    assert grown(after, before, "mcp_tools_time_to_first_token_seconds_count", tool=GR) == 3
    assert grown(after, before, "mcp_tools_execution_duration_seconds_count", tool=GR, status="completed") == 2
    assert grown(after, before, "mcp_tools_execution_duration_seconds_count", tool=GR, status="cancelled") == 1
    # Tokens as the rows have them (the cancelled run's too), under the configured model.
    model = stack.env.get("ANTHROPIC_MODEL", "claude-sonnet-5-5")
    for kind in ("input", "output"):
        spent = sum(getattr(run, f"{kind}_tokens") for run in runs)
        assert grown(after, before, "mcp_tools_llm_tokens_total", tool=GR, model=model, type=kind) == spent, kind
    assert grown(after, before, "mcp_tools_cache_lookups_total", tool=GR, result="miss") == 3
    assert grown(after, before, "mcp_tools_cache_lookups_total", tool=GR, result="hit") == 1
    assert slow_run.input_tokens > 0
    # Deltas per transport: the WebSocket's, the event stream's, the MCP call's (its progress notifications).
    assert grown(after, before, "mcp_tools_deltas_relayed_total", transport="websocket") == deltas(ws_events)
    assert grown(after, before, "mcp_tools_deltas_relayed_total", transport="sse") == streamed.count(
        "event: execution.delta"
    )
    assert grown(after, before, "mcp_tools_deltas_relayed_total", transport="mcp") == deltas(mcp_run.events)
    assert grown(after, before, "mcp_tools_event_log_append_seconds_count") >= 1

    # One directory for the host: files of the daphne process and of the worker process.
    pids = {name.rsplit("_", 1)[1].removesuffix(".db") for name in os.listdir(stack.env["PROMETHEUS_MULTIPROC_DIR"])}
    assert {str(stack.daphne.popen.pid), str(stack.workers[0].popen.pid)} <= pids


def _created(execution: dict):
    return ToolExecution.objects.get(pk=execution["id"]).created_at


async def _ignore(progress: float, total: float | None, message: str | None) -> None:
    pass


def _settled(now: Scrape, before: Scrape) -> Scrape | None:
    """The scrape, once every connection of the workload has closed."""
    open_now = [grown(now, before, "mcp_tools_connections", transport=t) for t in ("websocket", "sse", "mcp")]
    return now if open_now == [0, 0, 0] else None


def test_metrics_refuse_other_users_and_wrong_tokens_and_never_log_the_scrapers(stack, alice, staff):
    bearer = stack.env["METRICS_BEARER_TOKEN"]
    assert fetch(stack, None)[0] == 401
    assert fetch(stack, "Bearer " + bearer[::-1])[0] == 401
    assert fetch(stack, "Token " + alice.auth_token.key)[0] == 403
    status, body = fetch(stack, "Token " + staff.auth_token.key)
    assert status == 200 and "mcp_tools_executions_started_total" in body
    assert bearer not in stack.daphne.log() and bearer[::-1] not in stack.daphne.log()
    assert not any(bearer in path.read_text(errors="replace") for path in Path(stack.daphne.log_path).parent.iterdir())
