"""Retention: ``manage.py cleanup_executions`` and the daily Celery beat entry."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from mcp_tools.models import ToolExecution, ToolUsageStats
from tests.conftest import run_now

pytestmark = pytest.mark.django_db(transaction=True)


def execution_aged(user, days: float) -> ToolExecution:
    execution = run_now(user, "generate_report", {"data": {"d": days}})
    ToolExecution.objects.filter(pk=execution.pk).update(created_at=timezone.now() - dt.timedelta(days=days))
    return execution


def test_command_deletes_executions_older_than_the_retention_and_keeps_stats(tools, alice, settings):
    settings.MCP_CONFIG = {**settings.MCP_CONFIG, "RETENTION_DAYS": 30}
    old = execution_aged(alice, 31)
    recent = execution_aged(alice, 29)
    out = StringIO()
    call_command("cleanup_executions", stdout=out)
    assert out.getvalue().strip() == "Deleted 1 execution(s) older than 30 day(s)."
    assert list(ToolExecution.objects.values_list("pk", flat=True)) == [recent.pk]
    assert not ToolExecution.objects.filter(pk=old.pk).exists()
    assert ToolUsageStats.objects.get(tool__name="generate_report").total_executions == 2


def test_command_days_option_overrides_the_retention(tools, alice):
    execution_aged(alice, 3)
    execution_aged(alice, 1)
    out = StringIO()
    call_command("cleanup_executions", "--days", "2", stdout=out)
    assert "Deleted 1 execution(s) older than 2 day(s)." in out.getvalue()
    assert ToolExecution.objects.count() == 1
    with pytest.raises(CommandError, match="--days"):
        call_command("cleanup_executions", "--days", "-1")


def test_beat_runs_the_cleanup_task_daily_with_the_configured_retention(tools, alice, settings):
    from celery.schedules import crontab

    from config.celery import app

    entry = app.conf.beat_schedule["cleanup-old-executions"]
    assert isinstance(entry["schedule"], crontab)
    # Due once a day: one hour and one minute of each day.
    assert len(entry["schedule"].hour) == 1 and len(entry["schedule"].minute) == 1
    assert entry["kwargs"] == {"days": settings.MCP_CONFIG["RETENTION_DAYS"]}
    app.loader.import_default_modules()
    task = app.tasks[entry["task"]]
    execution_aged(alice, settings.MCP_CONFIG["RETENTION_DAYS"] + 1)
    execution_aged(alice, 0)
    assert task.apply(kwargs=entry["kwargs"]).result == {"deleted": 1}
    assert ToolExecution.objects.count() == 1
