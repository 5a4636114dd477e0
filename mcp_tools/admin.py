"""The article's three admin classes (step 7), made into an operator's console.

* ``ToolExecutionAdmin``: filters by status, tool, cache and date; search by
  tool, user or execution id; a read-only detail page that shows parameters,
  result, error and the event log as indented JSON; two actions that go
  through the service path like every other entry point:
  *cancel* (``services.execution_cancel``) and *re-run*
  (``services.execution_start`` with the same tool and parameters, as the
  acting staff user). Executions are never added or edited by hand.
* ``ToolUsageStatsAdmin``: the counters, read-only (only ``stats_record``
  writes them).
* The admin index links the live monitor (``admin_monitor.py``).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html

from . import jsonguard, selectors, services
from .errors import ServiceError
from .models import Tool, ToolExecution, ToolUsageStats

logger = logging.getLogger(__name__)

# The index template adds a "Live monitor" link above the app list.
admin.site.index_template = "admin/mcp_tools/index.html"
# No app-list sidebar beside every page: it repeats the index, and the 300 px it
# takes are what the executions list and the monitor's charts need at 1280 px.
admin.site.enable_nav_sidebar = False


def pretty_json(value: Any) -> str:
    """Indented JSON in a scrollable <pre>; escaped, so model output stays text."""
    if value in (None, "", [], {}):
        return "—"
    value = jsonguard.displayable(value)  # rows older versions stored with surrogates or infinities still show
    text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)
    return format_html(
        '<pre class="mcp-json" style="max-height:32em;overflow:auto;white-space:pre-wrap;margin:0">{}</pre>', text
    )


@admin.register(Tool)
class ToolAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "is_active", "timeout", "created_at"]  # kind: Python, Gantz script or http
    list_filter = ["is_active", "kind"]
    search_fields = ["name", "description"]
    readonly_fields = ["created_at", "updated_at"]


@admin.register(ToolExecution)
class ToolExecutionAdmin(admin.ModelAdmin):
    # Short cells: the first 8 hex digits of the id (search takes the full id), tokens in one column.
    list_display = ["short_id", "tool", "user", "status", "duration", "cached", "tokens", "created"]
    list_display_links = ["short_id"]
    list_filter = ["status", "tool", "cached", "created_at"]
    list_select_related = ["tool", "user"]
    search_fields = ["tool__name", "user__username", "=id"]
    date_hierarchy = "created_at"
    actions = ["cancel_executions", "rerun_executions"]
    fieldsets = [
        (None, {"fields": ["id", "tool", "user", "status", "error_code", "attempt", "cached", "celery_task_id"]}),
        ("Timing", {"fields": ["created_at", "started_at", "completed_at", "duration_ms", "worker", "epoch"]}),
        ("Usage", {"fields": ["input_tokens", "output_tokens"]}),
        ("Input and output", {"fields": ["parameters_json", "result_json", "error_text"]}),
        ("Event log", {"fields": ["events_json"], "classes": ["collapse"]}),
    ]
    # Every field above is a plain name (no side-by-side tuples): all of them are read-only.
    readonly_fields = [field for _, options in fieldsets for field in options["fields"] if isinstance(field, str)]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ToolExecution]:
        """Everyone's executions need ``view_all_executions``; staff without it see their own."""
        executions = super().get_queryset(request)
        return executions if selectors.may_view_all_executions(request.user) else executions.filter(user=request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # executions are created by services.execution_start only

    @admin.display(description="id", ordering="id")
    def short_id(self, obj: ToolExecution) -> str:
        return format_html('<span title="{}" style="font-family:monospace">{}</span>', obj.pk, str(obj.pk)[:8])

    @admin.display(description="duration (ms)", ordering="duration_ms")
    def duration(self, obj: ToolExecution) -> str:
        return "—" if obj.duration_ms is None else f"{obj.duration_ms:,}"

    @admin.display(description="tokens in / out", ordering="output_tokens")
    def tokens(self, obj: ToolExecution) -> str:
        return f"{obj.input_tokens:,} / {obj.output_tokens:,}"

    @admin.display(description="created", ordering="created_at")
    def created(self, obj: ToolExecution) -> str:
        return format_html(
            '<span title="{}" style="white-space:nowrap">{}</span>',
            obj.created_at.isoformat(),
            timezone.localtime(obj.created_at).strftime("%Y-%m-%d %H:%M:%S"),
        )

    def has_change_permission(self, request: HttpRequest, obj: ToolExecution | None = None) -> bool:
        # A record, not a form: the detail page is view-only; the list keeps its actions.
        return obj is None and super().has_change_permission(request)

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        """The cancel action is for operators: cancelling anyone's run needs ``cancel_any_execution``."""
        return selectors.may_cancel_any_execution(request.user)

    @admin.display(description="parameters")
    def parameters_json(self, obj: ToolExecution) -> str:
        return pretty_json(obj.parameters)

    @admin.display(description="result")
    def result_json(self, obj: ToolExecution) -> str:
        return pretty_json(obj.result)

    @admin.display(description="error")
    def error_text(self, obj: ToolExecution) -> str:
        if not obj.error:
            return "—"
        return format_html(
            '<pre style="white-space:pre-wrap;margin:0">{}{}</pre>',
            f"[{obj.error_code}] " if obj.error_code else "",
            jsonguard.displayable_text(obj.error),
        )

    @admin.display(description="events")
    def events_json(self, obj: ToolExecution) -> str:
        # A running execution's log is not on the row yet: read it where it lives.
        events = obj.events if obj.is_terminal else selectors.execution_events(obj.pk)[0]
        return pretty_json(events)

    @admin.action(description="Cancel selected running executions", permissions=["cancel"])
    def cancel_executions(self, request: HttpRequest, queryset: QuerySet[ToolExecution]) -> None:
        active = queryset.filter(status__in=ToolExecution.ACTIVE_STATUSES)
        cancelled = 0
        for execution in active:
            ended = services.execution_cancel(user=request.user, execution_id=execution.pk)
            cancelled += ended.status == ToolExecution.Status.CANCELLED
        skipped = queryset.count() - active.count()
        self.message_user(
            request,
            f"Cancelled {cancelled} execution(s)."
            + (f" {skipped} had already ended and were left alone." if skipped else ""),
        )

    @admin.action(description="Re-run selected finished executions", permissions=["change"])
    def rerun_executions(self, request: HttpRequest, queryset: QuerySet[ToolExecution]) -> None:
        started, problems = 0, []
        for execution in queryset.filter(status__in=ToolExecution.TERMINAL_STATUSES).select_related("tool"):
            try:
                # No cache: a re-run is asked for to run the tool again.
                services.execution_start_uncached(
                    user=request.user, tool_name=execution.tool.name, parameters=execution.parameters
                )
                started += 1
            except ServiceError as exc:
                problems.append(f"{execution.pk}: {exc.message}")
        self.message_user(request, f"Started {started} new execution(s) as {request.user.get_username()}.")
        for problem in problems:
            self.message_user(request, f"Not re-run: {problem}", level=messages.WARNING)


@admin.register(ToolUsageStats)
class ToolUsageStatsAdmin(admin.ModelAdmin):
    list_display = [
        "tool",
        "total_executions",
        "successful_executions",
        "failed_executions",
        "cancelled_executions",
        "cached_executions",
        "success_rate_percent",
        "average_duration",
        "input_tokens",
        "output_tokens",
        "last_execution",
    ]
    list_select_related = ["tool"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ToolUsageStats | None = None) -> bool:
        return False  # only services.stats_record writes counters

    @admin.display(description="success rate", ordering="successful_executions")
    def success_rate_percent(self, obj: ToolUsageStats) -> str:
        return f"{obj.success_rate:.1%}"

    @admin.display(description="average duration (ms)")
    def average_duration(self, obj: ToolUsageStats) -> str:
        return f"{obj.average_duration_ms:.0f}"
