"""Celery tasks. Thin: each takes ids; the work lives in the engine (``engine/runner.py``) and the services."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from .engine.runner import execute_tool_async  # noqa: F401  (the token task lives with the run it starts)
from .models import ToolExecution


@shared_task(name="mcp_tools.cleanup_old_executions")
def cleanup_old_executions(days: int | None = None) -> dict[str, int]:
    """Delete ended executions older than ``days`` (default MCP_CONFIG['RETENTION_DAYS']),
    and those whose requested retention (``expires_at``) has passed."""
    days = settings.MCP_CONFIG["RETENTION_DAYS"] if days is None else days
    now = timezone.now()
    expired = Q(expires_at__isnull=True, created_at__lt=now - timedelta(days=days)) | Q(expires_at__lt=now)
    deleted, _ = ToolExecution.objects.filter(expired, status__in=ToolExecution.TERMINAL_STATUSES).delete()
    return {"deleted": deleted}
