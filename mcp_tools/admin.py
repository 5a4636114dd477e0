"""The article's admin classes, with the streaming fields shown read-only."""
from django.contrib import admin

from .models import Tool, ToolExecution, ToolUsageStats


@admin.register(Tool)
class ToolAdmin(admin.ModelAdmin):
    list_display = ["name", "is_active", "timeout", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "description"]


@admin.register(ToolExecution)
class ToolExecutionAdmin(admin.ModelAdmin):
    list_display = ["id", "tool", "user", "status", "duration_ms", "created_at"]
    list_filter = ["status", "tool", "created_at"]
    search_fields = ["tool__name", "user__username"]
    readonly_fields = ["id", "result", "error", "error_code", "created_at", "completed_at", "attempt",
                       "cached", "input_tokens", "output_tokens", "events"]


@admin.register(ToolUsageStats)
class ToolUsageStatsAdmin(admin.ModelAdmin):
    list_display = ["tool", "total_executions", "success_rate", "average_duration_ms"]
