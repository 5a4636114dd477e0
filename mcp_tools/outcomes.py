"""How an execution ends: one path for every ending.

Completed, failed, cancelled, timed out, worker lost, answered from the cache:
each is a terminal event (``events.schema``) appended to the event log. The
log accepts exactly one per execution; whoever's event it accepted records
the end, exactly once, by ``record_end``: the row's final fields are derived
from that event alone (``row_fields``) and written together with the tool's
statistics in one transaction, so nobody can read a final status with stale
counters. Only then is the event sent, so a client that sees it finds the row
and the statistics final::

    end_execution(execution, failed_event("worker_lost", "...", duration_ms=..., attempt=2))   # from sync code
    await publisher.finish(event, on_claimed=...record_end...)                                # from the engine
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from . import metrics
from .events import Event, get_event_log
from .events.writer import EventWriter
from .models import ToolExecution, ToolUsageStats

logger = logging.getLogger(__name__)


def row_fields(event: Event) -> dict[str, Any]:
    """The final fields of an execution's row, from its terminal event."""
    error = event.get("error") or {}
    usage = event.get("usage") or {}
    return {
        "status": event["status"],
        "result": event.get("result"),
        "error": error.get("message"),
        "error_code": error.get("code", ""),
        "duration_ms": event.get("duration_ms"),
        "cached": bool(event.get("cached", False)),
        "attempt": event.get("attempt", 0),
        "input_tokens": usage.get("input_tokens", 0),
        "output_tokens": usage.get("output_tokens", 0),
        "epoch": event.get("epoch", ""),
    }


@transaction.atomic
def record_end(*, execution_id: str, tool_id: int, event: Event, events: list[Event]) -> bool:
    """Write the row's end and count it in the statistics, in one transaction.

    Conditional on the row being active: a second call (a repair racing the
    worker) changes nothing and counts nothing. Returns whether it wrote.
    """
    fields = {**row_fields(event), "events": events, "completed_at": timezone.now(), "worker": ""}
    active = ToolExecution.objects.filter(pk=execution_id, status__in=ToolExecution.ACTIVE_STATUSES)
    if not active.update(**fields):
        return False
    stats_record(tool_id=tool_id, fields=fields)
    metrics.execution_ended(tool_id=tool_id, event=event)
    return True


def stats_record(*, tool_id: int, fields: dict[str, Any]) -> None:
    """Count one ended execution with F() expressions: no lost updates."""
    status = fields["status"]
    changes: dict[str, Any] = {
        "total_executions": F("total_executions") + 1,
        "input_tokens": F("input_tokens") + fields["input_tokens"],
        "output_tokens": F("output_tokens") + fields["output_tokens"],
        "last_execution": timezone.now(),
    }
    if status == ToolExecution.Status.COMPLETED:
        changes["successful_executions"] = F("successful_executions") + 1
        changes["total_duration_ms"] = F("total_duration_ms") + (fields["duration_ms"] or 0)
    elif status == ToolExecution.Status.FAILED:
        changes["failed_executions"] = F("failed_executions") + 1
    elif status == ToolExecution.Status.CANCELLED:
        changes["cancelled_executions"] = F("cancelled_executions") + 1
    if fields["cached"]:
        changes["cached_executions"] = F("cached_executions") + 1
    if not ToolUsageStats.objects.filter(tool_id=tool_id).update(**changes):
        ToolUsageStats.objects.get_or_create(tool_id=tool_id)
        ToolUsageStats.objects.filter(tool_id=tool_id).update(**changes)


def end_execution(execution: ToolExecution, *, writer: EventWriter, events: list[Event]) -> bool:
    """From synchronous code: log ``events`` (the last one terminal) in one round trip;
    if the log accepted the terminal one, record the end, then send it. False if it had ended."""
    results = writer.append(events)
    terminal = results[-1]
    if terminal.seq is None:
        return False
    event = {**events[-1], "execution_id": writer.execution_id, "seq": terminal.seq, "epoch": writer.epoch}
    try:
        log = get_event_log()
        record_end(
            execution_id=str(execution.pk),
            tool_id=execution.tool_id,
            event=event,
            events=log.read(str(execution.pk)).events,
        )
        log.expire(str(execution.pk), settings.EVENT_LOG_TTL_S)
    except Exception:
        # The event is logged and is the truth: tell the followers anyway; the row is repaired from the log.
        logger.exception("Recording the end of %s failed", execution.pk)
    writer.send(event)
    return True


def repair_from_log(execution: ToolExecution) -> bool:
    """Write the row of an execution whose terminal event is logged but whose row is still active
    (its writer died between the two). Returns whether it wrote."""
    snapshot = get_event_log().read(str(execution.pk))
    if not snapshot.ended or not snapshot.events:
        return False
    return record_end(
        execution_id=str(execution.pk), tool_id=execution.tool_id, event=snapshot.events[-1], events=snapshot.events
    )
