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

import uuid
from typing import Any

from django.db.models import QuerySet

from .errors import NotFound, UnknownTool
from .eventlog import Event, get_event_log
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
        raise NotFound("You may watch this execution but not cancel it: that needs the "
                       "mcp_tools.cancel_any_execution permission.")
    return execution


def execution_events(execution_id: Any, *, after_seq: int = 0) -> tuple[list[Event], int]:
    """Stored events with seq > after_seq, and the highest seq stored.

    Live executions are read from the event log; once the log has expired the
    row's saved copy answers (every execution has at least its pending event,
    so an empty log means an expired one).
    """
    execution_id = str(execution_id)
    log = get_event_log()
    events = log.read(execution_id, after_seq)
    last_seq = events[-1]["seq"] if events else log.last_seq(execution_id)
    if last_seq:
        return events, last_seq
    saved = ToolExecution.objects.filter(pk=execution_id).values_list("events", flat=True).first() or []
    return [e for e in saved if e["seq"] > after_seq], len(saved)


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


def monitor_snapshot(*, limit: int = 500) -> dict[str, Any]:
    active = (ToolExecution.objects.filter(status__in=ToolExecution.ACTIVE_STATUSES)
              .select_related("tool", "user").order_by("created_at")[:limit])
    return {
        "type": "monitor.snapshot",
        "executions": [
            {"execution_id": str(e.pk), "tool": e.tool.name, "user": e.user.get_username(),
             "status": e.status, "created_at": e.created_at.isoformat(), "attempt": e.attempt}
            for e in active
        ],
        "stats": stats_by_tool(),
    }
