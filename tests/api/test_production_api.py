"""The REST API over real HTTP on the production topology.

daphne + ``celery worker`` processes + Redis + PostgreSQL, the anthropic
provider against the fake Messages API; the client is httpx over a socket.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest
from django.db.models import Sum

from mcp_tools.models import ToolExecution, ToolUsageStats
from tests.api.conftest import REPORT_PARAMETERS, TERMINAL, token_headers
from tests.conftest import assert_contiguous, streamed_text
from tests.stack import wait_until

pytestmark = [pytest.mark.production, pytest.mark.django_db(transaction=True)]


def sse_events(response: httpx.Response) -> Iterator[dict]:
    """Parse a live text/event-stream response, yielding each event as it arrives."""
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if line == "":
            if "data" in fields:
                yield {
                    "id": int(fields["id"]),
                    "event": fields["event"],
                    "data": httpx.Response(200, content=fields["data"]).json(),
                }
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


def test_execute_over_http_answers_200_with_the_execution(stack, tools, alice):
    response = httpx.post(
        f"{stack.http_url}/api/tools/generate_report/execute/",
        headers=token_headers(alice),
        json={"parameters": REPORT_PARAMETERS},
        timeout=30,
    )
    assert response.status_code == 200
    data = response.json()
    assert data["status"] == "completed" and data["tool_name"] == "generate_report"
    assert data["result"]["report"] == "".join(f"w{i} " for i in range(20))  # the fake API's default answer
    assert (data["output_tokens"], data["cached"], data["attempt"]) == (20, False, 1)
    assert data["input_tokens"] > 0 and data["duration_ms"] >= 0
    stats = httpx.get(f"{stack.http_url}/api/tools/generate_report/", headers=token_headers(alice)).json()["stats"]
    assert (stats["total_executions"], stats["successful_executions"], stats["output_tokens"]) == (1, 1, 20)


def test_failed_execute_over_http_says_what_failed(stack, tools, alice):
    stack.anthropic.set_default({"status": 400, "error_message": "bad request body"})
    response = httpx.post(
        f"{stack.http_url}/api/tools/generate_report/execute/",
        headers=token_headers(alice),
        json={"parameters": REPORT_PARAMETERS},
        timeout=30,
    )
    assert response.status_code == 502
    body = response.json()
    assert body["error"]["code"] == "llm_error" and "bad request body" in body["error"]["message"]
    assert body["execution"]["status"] == "failed"
    assert ToolExecution.objects.get(pk=body["execution"]["id"]).error_code == "llm_error"


def test_execute_async_over_http_answers_202_and_a_worker_process_runs_it(stack, tools, alice):
    response = httpx.post(
        f"{stack.http_url}/api/tools/generate_report/execute_async/",
        headers=token_headers(alice),
        json={"parameters": REPORT_PARAMETERS},
        timeout=30,
    )
    assert response.status_code == 202
    accepted = response.json()
    assert set(accepted) == {"execution_id", "task_id"} and accepted["task_id"]
    status_url = f"{stack.http_url}/api/executions/{accepted['execution_id']}/status/"

    def ended() -> dict | None:
        body = httpx.get(status_url, headers=token_headers(alice)).json()
        return body if body["status"] in ("completed", "failed", "cancelled") else None

    status = wait_until(ended, timeout=30, interval=0.1, what="the execution to end")
    assert set(status) == {"id", "status", "result", "error"}
    assert status["status"] == "completed" and status["result"]["report"]
    listing = httpx.get(
        f"{stack.http_url}/api/executions/?tool=generate_report&status=completed", headers=token_headers(alice)
    ).json()
    assert [e["id"] for e in listing["results"]] == [accepted["execution_id"]]


def test_event_stream_over_http_is_live_and_resumes_from_last_event_id(stack, tools, alice):
    stack.anthropic.set_default({"tokens": 80, "delay_ms": 15})
    accepted = httpx.post(
        f"{stack.http_url}/api/tools/generate_report/execute_async/",
        headers=token_headers(alice),
        json={"parameters": REPORT_PARAMETERS},
    ).json()
    url = f"{stack.http_url}/api/executions/{accepted['execution_id']}/events/"
    first: list[dict] = []
    with httpx.stream("GET", url, headers=token_headers(alice), timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for event in sse_events(response):
            first.append(event)
            if event["event"] == "execution.delta" and event["id"] >= 5:
                break
    # Still running when we hung up: these events came live, not from a finished log.
    assert not ToolExecution.objects.get(pk=accepted["execution_id"]).is_terminal
    with httpx.stream(
        "GET", url, headers={**token_headers(alice), "Last-Event-ID": str(first[-1]["id"])}, timeout=30
    ) as response:
        rest = list(sse_events(response))  # ends by itself after the terminal event
    events = [e["data"] for e in first + rest]
    assert [e["id"] for e in first + rest] == [e["seq"] for e in events]
    assert_contiguous(events)
    assert events[-1]["type"] == "execution.completed" and sum(e["type"] in TERMINAL for e in events) == 1
    assert streamed_text(events) == events[-1]["result"]["report"] == "".join(f"w{i} " for i in range(80))


def test_event_stream_over_http_replays_a_finished_execution_from_the_database(stack, tools, alice):
    response = httpx.post(
        f"{stack.http_url}/api/tools/generate_report/execute/",
        headers=token_headers(alice),
        json={"parameters": REPORT_PARAMETERS},
        timeout=30,
    )
    execution_id = response.json()["id"]
    url = f"{stack.http_url}/api/executions/{execution_id}/events/?token={alice.auth_token.key}&after_seq=2"
    with httpx.stream("GET", url, timeout=30) as stream:
        events = [e["data"] for e in sse_events(stream)]
    saved = ToolExecution.objects.get(pk=execution_id).events
    assert events == saved[2:]


def test_hundred_parallel_executions_through_the_api_leave_the_stats_exact(stack, tools, alice, bob):
    stack.anthropic.set_default({"tokens": 12, "delay_ms": 2})
    users = [alice, bob]

    async def start_all() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(base_url=stack.http_url, timeout=60, limits=limits) as client:
            return await asyncio.gather(
                *(
                    client.post(
                        "/api/tools/generate_report/execute_async/",
                        headers=token_headers(users[n % 2]),
                        json={"parameters": {"data": {"n": n}}, "use_cache": False},
                    )
                    for n in range(100)
                )
            )

    started = time.monotonic()
    responses = asyncio.run(start_all())
    assert [r.status_code for r in responses] == [202] * 100, [r.text for r in responses if r.status_code != 202]
    ids = {r.json()["execution_id"] for r in responses}
    assert len(ids) == 100
    wait_until(
        lambda: (
            not ToolExecution.objects.filter(pk__in=ids).exclude(status__in=ToolExecution.TERMINAL_STATUSES).exists()
        ),
        timeout=180,
        interval=0.2,
        what="all 100 executions to end",
    )
    elapsed = time.monotonic() - started
    rows = ToolExecution.objects.filter(pk__in=ids)
    assert rows.filter(status="completed", cached=False).count() == 100
    totals = rows.aggregate(duration=Sum("duration_ms"), input=Sum("input_tokens"), output=Sum("output_tokens"))
    stats = ToolUsageStats.objects.get(tool__name="generate_report")
    assert (
        stats.total_executions,
        stats.successful_executions,
        stats.failed_executions,
        stats.cancelled_executions,
        stats.cached_executions,
    ) == (100, 100, 0, 0, 0)
    assert stats.total_duration_ms == totals["duration"]
    assert (stats.input_tokens, stats.output_tokens) == (totals["input"], totals["output"])
    assert stats.output_tokens == 100 * 12
    api_stats = httpx.get(f"{stack.http_url}/api/tools/generate_report/", headers=token_headers(alice)).json()["stats"]
    assert api_stats["total_executions"] == 100 and api_stats["success_rate"] == 1.0
    assert api_stats["output_tokens"] == 1200 and api_stats["average_duration_ms"] == totals["duration"] / 100
    print(f"100 parallel executions through the API ended in {elapsed:.1f}s")
