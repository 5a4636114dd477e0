"""``my_usage(days)``: your own tool usage, read from the service's own tables and streamed as a table.

The example of what a Python tool can do that a script cannot: it knows who
is asking (``ctx.user``), reads the project's models with the ORM, and
streams its answer line by line while it works.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, TypedDict

from django.db.models import Avg, Count, Q, Sum
from django.utils import timezone
from pydantic import Field

from ..models import ToolExecution
from .api import tool
from .context import ToolContext

HEADER = (
    "| tool | runs | completed | failed | cancelled | avg duration | tokens in / out |\n|---|---|---|---|---|---|---|\n"
)


class UsageSummary(TypedDict):
    output: str
    days: int
    executions: int
    tools: int


@tool(
    name="my_usage",
    description="Your own tool usage over the last days: runs, outcomes, duration and tokens "
    "per tool, as a Markdown table",
)
async def my_usage(
    ctx: ToolContext, days: Annotated[int, Field(ge=1, le=365, description="How many days back to look")] = 7
) -> UsageSummary:
    since = timezone.now() - timedelta(days=days)
    rows = (
        ToolExecution.objects.filter(user=ctx.user, created_at__gte=since)
        .exclude(pk=ctx.execution_id)
        .values("tool__name")
        .order_by("tool__name")
        .annotate(
            runs=Count("pk"),
            completed=Count("pk", filter=Q(status="completed")),
            failed=Count("pk", filter=Q(status="failed")),
            cancelled=Count("pk", filter=Q(status="cancelled")),
            duration=Avg("duration_ms"),
            tokens_in=Sum("input_tokens"),
            tokens_out=Sum("output_tokens"),
        )
    )
    ctx.emit(f"## Your executions in the last {days} day{'s' if days != 1 else ''}\n\n")
    executions = tools = 0
    async for row in rows:
        if tools == 0:
            ctx.emit(HEADER)
        duration = f"{row['duration'] / 1000:.1f} s" if row["duration"] is not None else "—"
        ctx.emit(
            f"| {row['tool__name']} | {row['runs']} | {row['completed']} | {row['failed']} | "
            f"{row['cancelled']} | {duration} | {row['tokens_in'] or 0} / {row['tokens_out'] or 0} |\n"
        )
        executions += row["runs"]
        tools += 1
    if tools == 0:
        ctx.emit("No executions yet.\n")
    return {"days": days, "executions": executions, "tools": tools}  # type: ignore[typeddict-item]
