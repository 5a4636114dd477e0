"""Celery tasks. Thin: each takes ids, the work lives in runner/services."""
from __future__ import annotations

from celery import shared_task, signals
from django.conf import settings
from django.utils import timezone

from .models import ToolExecution
from .runner import execution_run


@shared_task(name="mcp_tools.execute_tool_async", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def execute_tool_async(execution_id: str, use_cache: bool = True) -> None:
    """Run one execution; retries happen inside, announced as ``retrying``."""
    execution_run(execution_id, use_cache=use_cache)


@shared_task(name="mcp_tools.cleanup_old_executions")
def cleanup_old_executions(days: int | None = None) -> dict[str, int]:
    """Delete executions older than ``days`` (default: MCP_CONFIG['RETENTION_DAYS'])."""
    days = settings.MCP_CONFIG["RETENTION_DAYS"] if days is None else days
    cutoff = timezone.now() - timezone.timedelta(days=days)
    deleted, _ = ToolExecution.objects.filter(created_at__lt=cutoff).delete()
    return {"deleted": deleted}


@shared_task(name="mcp_tools.reap_stale_executions")
def reap_stale_executions() -> dict[str, int]:
    """End executions whose worker vanished (see mcp_tools/liveness.py)."""
    from .liveness import executions_reap

    return executions_reap()


@signals.worker_init.connect
def preload_provider_sdk(**kwargs) -> None:
    """Import the anthropic SDK once in the worker's main process, before the
    pool forks: imported lazily in each child it took seconds of a tool's
    time limit on the first execution there."""
    from .providers import LLMSettings

    if LLMSettings.from_django().provider != "offline":
        import mcp_tools.providers.anthropic  # noqa: F401
