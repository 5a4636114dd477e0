"""The monitor's data: the snapshot's recently ended executions and the charts' aggregates.

Each test runs on both databases: SQLite in the embedded pass, PostgreSQL in
the production pass (the ``production`` parameter), since the chart queries
lean on SQL that differs between them (date truncation, OFFSET).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from mcp_tools import selectors
from mcp_tools.models import Tool, ToolExecution
from tests.conftest import grant

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.parametrize("database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.production)]),
]

NOW = timezone.now().replace(second=30, microsecond=0)


def run(
    tool: str,
    user,
    *,
    status: str,
    minutes_ago: float,
    duration_ms: int | None = None,
    cached: bool = False,
    tokens: tuple[int, int] = (0, 0),
) -> ToolExecution:
    """An execution row as the service leaves it, created ``minutes_ago`` before NOW."""
    execution = ToolExecution.objects.create(
        tool=Tool.objects.get(name=tool),
        user=user,
        status=status,
        duration_ms=duration_ms,
        cached=cached,
        input_tokens=tokens[0],
        output_tokens=tokens[1],
    )
    ToolExecution.objects.filter(pk=execution.pk).update(created_at=NOW - timedelta(minutes=minutes_ago))
    return execution


def test_snapshot_lists_the_latest_ended_executions_besides_the_active_ones(database, tools, alice):
    active = run("generate_report", alice, status="running", minutes_ago=1)
    ended = [
        run("generate_report", alice, status=status, minutes_ago=10 - i, duration_ms=100 + i)
        for i, status in enumerate(["completed", "failed", "cancelled", "completed"])
    ]
    snapshot = selectors.monitor_snapshot(recent=3)
    assert [e["execution_id"] for e in snapshot["executions"]] == [str(active.pk)]
    assert [e["execution_id"] for e in snapshot["recent"]] == [str(e.pk) for e in reversed(ended)][:3]
    newest = snapshot["recent"][0]
    assert (newest["status"], newest["duration_ms"], newest["user"], newest["tool"]) == (
        "completed",
        103,
        "alice",
        "generate_report",
    )


def test_runs_are_counted_per_minute_by_state_over_the_last_hour(database, tools, alice):
    for status in ("completed", "completed", "failed"):
        run("generate_report", alice, status=status, minutes_ago=5)
    run("summarize_content", alice, status="cancelled", minutes_ago=5)
    run("generate_report", alice, status="retrying", minutes_ago=0)
    run("generate_report", alice, status="completed", minutes_ago=61)  # outside the window
    charts = selectors.monitor_charts(window="hour", now=NOW)
    runs = charts["runs"]
    assert len(runs["t"]) == 60 and runs["t"] == sorted(runs["t"]) and charts["bucket_s"] == 60
    five_ago = runs["t"].index(int((NOW - timedelta(minutes=5)).timestamp()) // 60 * 60)
    assert [runs[state][five_ago] for state in ("completed", "failed", "cancelled", "active")] == [2, 1, 1, 0]
    assert runs["active"][-1] == 1
    assert sum(sum(runs[state]) for state in selectors.RUN_STATES) == 5


def test_the_day_window_folds_minutes_into_quarter_hours(database, tools, alice):
    # A quarter hour 16 h back, from its start: two runs inside it, one a minute before it, one
    # 30 min ago. (Fixed minutes ago would straddle a boundary whenever NOW is on one, e.g. 18:00.)
    quarter = NOW.replace(minute=NOW.minute // 15 * 15, second=0) - timedelta(hours=16)
    moments = [quarter + timedelta(minutes=1), quarter + timedelta(minutes=14), quarter - timedelta(minutes=1)]
    for at in [*moments, NOW - timedelta(minutes=30)]:
        run("generate_report", alice, status="completed", minutes_ago=(NOW - at).total_seconds() / 60)
    runs = selectors.monitor_charts(window="day", now=NOW)["runs"]
    assert len(runs["t"]) == 96 and all(b - a == 900 for a, b in zip(runs["t"], runs["t"][1:], strict=False))
    assert runs["completed"][runs["t"].index(int(quarter.timestamp()))] == 2
    assert sorted(count for count in runs["completed"] if count) == [1, 1, 2]


def test_duration_percentiles_per_tool_use_fresh_completed_runs_only(database, tools, alice):
    for duration in range(1, 21):  # 20 runs: 1..20 ms
        run("generate_report", alice, status="completed", minutes_ago=3, duration_ms=duration * 10)
    run("generate_report", alice, status="completed", minutes_ago=3, duration_ms=1, cached=True)
    run("generate_report", alice, status="failed", minutes_ago=3, duration_ms=99_999)
    run("summarize_content", alice, status="failed", minutes_ago=3, duration_ms=5, tokens=(7, 0))
    charts = selectors.monitor_charts(window="hour", now=NOW)
    assert charts["tools"] == ["generate_report", "summarize_content"]
    report = charts["tools"].index("generate_report")
    assert charts["duration_ms"]["p50"][report] == 100  # nearest rank: the 10th of 20
    assert charts["duration_ms"]["p95"][report] == 190  # the 19th of 20
    assert charts["duration_ms"]["runs"][report] == 20
    assert charts["duration_ms"]["p50"][1] is None and charts["runs_per_tool"] == [22, 1]


def test_tokens_are_summed_per_tool_for_every_run_in_the_window(database, tools, alice):
    run("generate_report", alice, status="completed", minutes_ago=2, tokens=(10, 20))
    run("generate_report", alice, status="cancelled", minutes_ago=2, tokens=(5, 1))
    run("summarize_content", alice, status="completed", minutes_ago=2, tokens=(100, 50))
    run("summarize_content", alice, status="completed", minutes_ago=90, tokens=(1000, 1000))
    charts = selectors.monitor_charts(window="hour", now=NOW)
    assert charts["tokens"] == {"input": [15, 100], "output": [21, 50]}
    assert selectors.monitor_charts(window="day", now=NOW)["tokens"] == {"input": [15, 1100], "output": [21, 1050]}


def test_chart_queries_do_not_grow_with_the_rows(database, tools, alice, django_assert_max_num_queries):
    for i in range(30):
        run(
            "generate_report" if i % 2 else "summarize_content", alice, status="completed", minutes_ago=i, duration_ms=i
        )
    # Three aggregates over the window, then two percentile look-ups per tool: 3 + 2 * 2.
    with django_assert_max_num_queries(7):
        selectors.monitor_charts(window="hour", now=NOW)


def test_charts_json_is_behind_the_monitor_gate(database, tools, alice):
    url = "/admin/monitor/charts.json"
    assert Client().get(url)["Location"].startswith("/admin/login/")
    client = Client()
    client.force_login(alice)
    assert client.get(url)["Location"].startswith("/admin/login/")
    staff = get_user_model().objects.create_user("watcher", password="pw", is_staff=True)
    client.force_login(staff)
    assert client.get(url).status_code == 403  # staff alone: the admin, not everyone's executions
    client.force_login(grant(staff, "view_all_executions"))
    run("generate_report", alice, status="completed", minutes_ago=1, duration_ms=5)
    answer = client.get(url + "?window=day")
    assert answer.status_code == 200 and answer.json()["window"] == "day"
    assert answer.json()["tools"] == ["generate_report"]
    refused = client.get(url + "?window=year")
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_request"
