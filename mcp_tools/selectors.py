"""Reads: who may see which execution, stored events, the monitor snapshot.

Writes live in ``services.py``; these functions never change anything.

Who may see and cancel whose executions, on every transport (WebSocket,
monitor, admin, and through the service the REST API and MCP):

* everybody: their own executions;
* ``mcp_tools.view_all_executions``: see (subscribe to, open in the admin)
  everyone's; with ``is_staff`` also the live monitor (``/ws/monitor/``,
  ``/admin/monitor/``), which lives in the admin;
* ``mcp_tools.cancel_any_execution``: cancel everyone's.

Superusers hold every permission. ``is_staff`` alone only lets a user into
the admin; it shows them nothing of anyone else's.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Count, QuerySet, Sum
from django.db.models.functions import Trunc
from django.utils import timezone

from .errors import NotFound, UnknownTool
from .events import Event, get_event_log
from .models import Tool, ToolExecution, ToolUsageStats


def tools_active() -> QuerySet[Tool]:
    return Tool.objects.filter(is_active=True)


def tool_allowed(user, tool: Tool) -> bool:
    """Whether ``user`` may see and run ``tool``: in one of its groups (if it names
    any) and holding its permission (if it names one). Superusers may use every tool."""
    if not user.is_active:
        return False
    if user.is_superuser:
        return True
    if tool.access_groups and not user.groups.filter(name__in=tool.access_groups).exists():
        return False
    return not tool.access_permission or user.has_perm(tool.access_permission)


def tools_visible_to(user) -> list[Tool]:
    """The active tools ``user`` may see and run, by name."""
    return [tool for tool in tools_active() if tool_allowed(user, tool)]


def tool_get_usable(*, user, name: Any) -> Tool:
    """The active tool named ``name`` if ``user`` may use it; else UnknownTool,
    the same answer as for a tool that does not exist."""
    if not isinstance(name, str) or not name:
        raise UnknownTool("Give the tool's name.")
    tool = Tool.objects.filter(name=name, is_active=True).first()
    if tool is None or not tool_allowed(user, tool):
        raise UnknownTool(f"No active tool is named {name!r}.")
    return tool


def tool_describe(tool: Tool) -> dict[str, Any]:
    return {"name": tool.name, "description": tool.description, "parameters_schema": tool.parameters_schema}


VIEW_ALL_EXECUTIONS = "mcp_tools.view_all_executions"
CANCEL_ANY_EXECUTION = "mcp_tools.cancel_any_execution"


def may_view_all_executions(user) -> bool:
    return user.is_active and user.has_perm(VIEW_ALL_EXECUTIONS)


def may_monitor(user) -> bool:
    """The live monitor: an admin page, so staff, and everyone's executions, so the permission too."""
    return user.is_staff and may_view_all_executions(user)


def may_cancel_any_execution(user) -> bool:
    return user.is_active and user.has_perm(CANCEL_ANY_EXECUTION)


def executions_visible_to(user) -> QuerySet[ToolExecution]:
    """Every execution for holders of ``view_all_executions``; everybody else only their own."""
    executions = ToolExecution.objects.select_related("tool", "user")
    return executions if may_view_all_executions(user) else executions.filter(user=user)


def execution_get_visible(*, user, execution_id: Any) -> ToolExecution:
    """The execution, or NotFound: the same answer whether it exists or is someone else's."""
    try:
        key = uuid.UUID(str(execution_id))
    except (ValueError, TypeError, AttributeError):
        raise NotFound() from None
    try:
        return executions_visible_to(user).get(pk=key)
    except ToolExecution.DoesNotExist:
        raise NotFound() from None


def execution_get_cancellable(*, user, execution_id: Any) -> ToolExecution:
    """The execution if ``user`` may cancel it (their own, or anyone's with ``cancel_any_execution``);
    else NotFound, as for one they cannot see."""
    execution = execution_get_visible(user=user, execution_id=execution_id)
    if execution.user_id != user.pk and not may_cancel_any_execution(user):
        raise NotFound(
            "You may watch this execution but not cancel it: that needs the mcp_tools.cancel_any_execution permission."
        )
    return execution


def execution_owner(execution_id: Any) -> dict[str, str]:
    """``{"tool", "user"}`` of an execution, as the monitor's events name them."""
    row = ToolExecution.objects.filter(pk=execution_id).values("tool__name", "user__username").first()
    return {"tool": row["tool__name"], "user": row["user__username"]} if row else {"tool": "", "user": ""}


def execution_row_ended(execution_id: Any) -> bool:
    """Whether the execution's row records its end (or is gone): its terminal event may be handed out."""
    return not ToolExecution.objects.filter(pk=execution_id, status__in=ToolExecution.ACTIVE_STATUSES).exists()


# The epoch of rows saved before epochs existed.
LEGACY_EPOCH = "0"


def execution_events(execution_id: Any, *, after_seq: int = 0) -> tuple[list[Event], int]:
    """The events after ``after_seq`` and the last seq, from the live log or, once it expired, the row
    (for synchronous readers; followers use ``delivery.read_events``, the same rule)."""
    snapshot = get_event_log().read(str(execution_id), after_seq)
    if snapshot.epoch and snapshot.last_seq:
        return snapshot.events, snapshot.last_seq
    events, _ = stored_events(execution_id)
    return [e for e in events if e["seq"] > after_seq], len(events)


def stored_events(execution_id: Any) -> tuple[list[Event], str]:
    """The event log saved on an ended execution's row, and its epoch ([] if none was saved)."""
    row = ToolExecution.objects.filter(pk=execution_id).values("events", "epoch").first()
    if not row or not row["events"]:
        return [], ""
    epoch = row["epoch"] or LEGACY_EPOCH
    return [{**event, "epoch": event.get("epoch", epoch)} for event in row["events"]], epoch


def stats_by_tool() -> dict[str, dict[str, Any]]:
    stats = {}
    for row in ToolUsageStats.objects.select_related("tool"):
        stats[row.tool.name] = {
            "total_executions": row.total_executions,
            "successful_executions": row.successful_executions,
            "failed_executions": row.failed_executions,
            "cancelled_executions": row.cancelled_executions,
            "cached_executions": row.cached_executions,
            "success_rate": row.success_rate,
            "average_duration_ms": row.average_duration_ms,
            "input_tokens": row.input_tokens,
            "output_tokens": row.output_tokens,
            "last_execution": row.last_execution.isoformat() if row.last_execution else None,
        }
    return stats


RECENT_ENDED_LIMIT = 50  # as many as the monitor page keeps listed


def monitor_entry(execution: ToolExecution) -> dict[str, Any]:
    return {
        "execution_id": str(execution.pk),
        "tool": execution.tool.name,
        "user": execution.user.get_username(),
        "status": execution.status,
        "created_at": execution.created_at.isoformat(),
        "attempt": execution.attempt,
    }


def monitor_snapshot(*, limit: int = 500, recent: int = RECENT_ENDED_LIMIT) -> dict[str, Any]:
    """``monitor.snapshot``: the active executions (PROTOCOL.md), the per-tool stats, and
    ``recent``, the latest ended executions (an extension), so a fresh monitor is not empty."""
    active = (
        ToolExecution.objects.filter(status__in=ToolExecution.ACTIVE_STATUSES)
        .select_related("tool", "user")
        .order_by("created_at")[:limit]
    )
    # Newest first on the created_at index; the status filter keeps the scan short.
    ended = (
        ToolExecution.objects.filter(status__in=ToolExecution.TERMINAL_STATUSES)
        .select_related("tool", "user")
        .order_by("-created_at")[:recent]
    )
    return {
        "type": "monitor.snapshot",
        "executions": [monitor_entry(e) for e in active],
        "recent": [
            {**monitor_entry(e), "duration_ms": e.duration_ms, "cached": e.cached, "error_code": e.error_code or None}
            for e in ended
        ],
        "stats": stats_by_tool(),
    }


# --- Monitor charts: aggregates over a recent window, computed by the database.
#
# Every query filters on created_at >= now - window (the created_at index) and
# aggregates in SQL; Python only folds at most one row per minute and status
# into buckets. Percentiles use the nearest-rank method with ORDER BY ... OFFSET,
# which SQLite and PostgreSQL answer alike (SQLite has no percentile_cont).

CHART_WINDOWS: dict[str, tuple[timedelta, int]] = {  # name: (span, bucket seconds)
    "hour": (timedelta(hours=1), 60),
    "day": (timedelta(days=1), 15 * 60),
}
RUN_STATES = ("completed", "failed", "cancelled", "active")


def _run_state(status: str) -> str:
    return "active" if status in ToolExecution.ACTIVE_STATUSES else status


def nearest_rank(fraction: float, count: int) -> int:
    """The 0-based position of the ``fraction`` percentile among ``count`` sorted values."""
    return max(0, math.ceil(fraction * count) - 1)


def monitor_charts(*, window: str = "hour", now: datetime | None = None) -> dict[str, Any]:
    """Runs per bucket by state, p50/p95 duration and tokens per tool, over ``window`` (a ``CHART_WINDOWS`` key)."""
    span, bucket_s = CHART_WINDOWS[window]
    now = now or timezone.now()
    first = (math.floor((now - span).timestamp() / bucket_s) + 1) * bucket_s
    starts = list(range(first, math.floor(now.timestamp() / bucket_s) * bucket_s + 1, bucket_s))
    since = datetime.fromtimestamp(starts[0], tz=UTC)
    in_window = ToolExecution.objects.filter(created_at__gte=since)
    return {
        "window": window,
        "bucket_s": bucket_s,
        "since": since.isoformat(),
        "now": now.isoformat(),
        "runs": _runs_by_bucket(in_window, starts, bucket_s),
        **_per_tool(in_window),
    }


def _runs_by_bucket(executions: QuerySet[ToolExecution], starts: list[int], bucket_s: int) -> dict[str, list]:
    index = {start: position for position, start in enumerate(starts)}
    runs: dict[str, list] = {"t": starts, **{state: [0] * len(starts) for state in RUN_STATES}}
    per_minute = (
        executions.annotate(minute=Trunc("created_at", "minute"))
        .values("minute", "status")
        .annotate(count=Count("id"))
        .order_by()
    )
    for row in per_minute:
        position = index.get(int(row["minute"].timestamp()) // bucket_s * bucket_s)
        if position is not None:
            runs[_run_state(row["status"])][position] += row["count"]
    return runs


def _per_tool(executions: QuerySet[ToolExecution]) -> dict[str, Any]:
    totals = {
        row["tool__name"]: row
        for row in executions.values("tool__name")
        .annotate(runs=Count("id"), input_tokens=Sum("input_tokens"), output_tokens=Sum("output_tokens"))
        .order_by()
    }
    # Durations of runs that ran the tool: a cache hit's few milliseconds would pull p50 down.
    timed = executions.filter(status=ToolExecution.Status.COMPLETED, cached=False, duration_ms__isnull=False)
    timed_counts = dict(timed.values_list("tool__name").annotate(count=Count("id")).order_by())
    tools = sorted(totals)
    percentiles: dict[str, list] = {"p50": [], "p95": [], "runs": []}
    for tool in tools:
        count = timed_counts.get(tool, 0)
        durations = timed.filter(tool__name=tool).order_by("duration_ms").values_list("duration_ms", flat=True)
        for name, fraction in (("p50", 0.50), ("p95", 0.95)):
            percentiles[name].append(durations[nearest_rank(fraction, count)] if count else None)
        percentiles["runs"].append(count)
    return {
        "tools": tools,
        "runs_per_tool": [totals[tool]["runs"] for tool in tools],
        "duration_ms": percentiles,
        "tokens": {
            "input": [totals[tool]["input_tokens"] or 0 for tool in tools],
            "output": [totals[tool]["output_tokens"] or 0 for tool in tools],
        },
    }
