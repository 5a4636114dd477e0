"""Reads: who may see which execution, stored events, the monitor snapshot.

Writes live in ``services.py``; these functions never change anything.
"""
from __future__ import annotations

import uuid
from typing import Any

from django.db.models import QuerySet

from .errors import NotFound, UnknownTool
from .events import Event
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


def executions_visible_to(user) -> QuerySet[ToolExecution]:
    """Staff see every execution; everybody else only their own."""
    executions = ToolExecution.objects.select_related("tool", "user")
    return executions if user.is_staff else executions.filter(user=user)


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


def can_monitor_everyone(user) -> bool:
    """Whether ``user`` may watch every user's executions (the monitor)."""
    return bool(user.is_staff)


def execution_owner(execution_id: Any) -> dict[str, str]:
    """``{"tool", "user"}`` of an execution, as the monitor's events name them."""
    row = ToolExecution.objects.filter(pk=execution_id).values("tool__name", "user__username").first()
    return {"tool": row["tool__name"], "user": row["user__username"]} if row else {"tool": "", "user": ""}


def execution_get_cancellable(*, user, execution_id: Any) -> ToolExecution:
    """An execution ``user`` may cancel, or NotFound (the same answer as for one that does not exist)."""
    return execution_get_visible(user=user, execution_id=execution_id)


# The epoch of rows saved before epochs existed.
LEGACY_EPOCH = "0"


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
