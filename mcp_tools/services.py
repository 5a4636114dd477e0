"""Writes: the one path every entry point takes to run a tool.

WebSocket ``execute``, REST ``execute``/``execute_async``, ``manage.py
run_tool`` and MCP ``tools/call`` all call ``execution_start``::

    execution = execution_start(user=user, tool_name="generate_report",
                                parameters={"data": {...}})

It validates the parameters against the tool's JSON Schema, applies the
user's limits, creates the ``ToolExecution``, publishes its first event
(``pending``, seq 1), and then either answers from the cache (a cache hit is
still an execution: recorded, streamed, counted) or runs the tool — in a
Celery worker, or inline for the synchronous REST call and the CLI.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import time
import uuid
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from jsonschema import Draft202012Validator

from . import jsonguard
from .errors import IdempotencyConflict, InvalidMessage, InvalidParameters, RateLimited, UnknownTool
from .events import ExecutionPublisher, cancelled_event, completed_event, failed_event
from .models import Tool, ToolExecution, ToolUsageStats
from .eventlog import get_event_log
from .selectors import execution_events, execution_get_cancellable
from .tools import STREAMED_FIELD

logger = logging.getLogger(__name__)

# A cached text is replayed in pieces of this size, so clients see it stream.
CACHED_PIECE_CHARS = 256
IDEMPOTENCY_KEY_MAX_CHARS = 200


def tool_get_active(name: Any) -> Tool:
    if not isinstance(name, str) or not name:
        raise UnknownTool("Give the tool's name.")
    try:
        return Tool.objects.get(name=name, is_active=True)
    except Tool.DoesNotExist:
        raise UnknownTool(f"No active tool is named {name!r}.") from None


def parameters_validate(tool: Tool, parameters: Any) -> dict[str, Any]:
    """The parameters, or InvalidParameters listing every problem found."""
    validator = Draft202012Validator(tool.parameters_schema or {"type": "object"})
    problems = [
        {"path": "/".join(str(p) for p in error.absolute_path), "field": _field_of(error),
         "message": error.message}
        for error in sorted(validator.iter_errors(parameters), key=lambda e: list(e.absolute_path))
    ]
    if problems:
        raise InvalidParameters(f"Invalid parameters for {tool.name}: " + "; ".join(p["message"] for p in problems),
                                details=problems)
    return parameters


def _field_of(error) -> str | None:
    """The top-level parameter a schema error is about (for forms)."""
    if error.absolute_path:
        return str(error.absolute_path[0])
    if error.validator == "required":
        return error.message.split("'")[1] if "'" in error.message else None
    if error.validator == "additionalProperties" and "'" in error.message:
        return error.message.split("'")[1]
    return None


def cache_key(tool_name: str, parameters: dict[str, Any]) -> str:
    canonical = json.dumps(parameters, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return f"mcp_tool:{tool_name}:{hashlib.sha256(canonical.encode()).hexdigest()}"


def limits_check(user) -> None:
    """Per-user execution rate (per minute) and concurrent executions."""
    config = settings.MCP_CONFIG
    active = ToolExecution.objects.filter(user=user, status__in=ToolExecution.ACTIVE_STATUSES).count()
    if active >= config["MAX_CONCURRENT_EXECUTIONS"]:
        raise RateLimited(f"At most {config['MAX_CONCURRENT_EXECUTIONS']} executions may run at once.",
                          retry_after=1)
    now = time.time()
    window = int(now // 60)
    key = f"ratelimit:executions:{user.pk}:{window}"
    try:  # one round trip once the minute's counter exists (INCR keeps its expiry)
        count = cache.incr(key)
    except ValueError:  # the minute's first execution: create the counter
        count = 1 if cache.add(key, 1, timeout=61) else cache.incr(key)
    if count > config["RATE_LIMIT_PER_MINUTE"]:
        raise RateLimited(f"At most {config['RATE_LIMIT_PER_MINUTE']} executions per minute.",
                          retry_after=math.ceil(60 - now % 60))


def execution_start(*, user, tool_name: str, parameters: Any = None, use_cache: bool = True,
                    inline: bool = False, defer_enqueue: bool = False,
                    idempotency_key: str | None = None) -> ToolExecution:
    """Validate, record, publish ``pending``, then answer from cache or run.

    ``defer_enqueue``: a queued execution is left for the caller to hand to
    Celery with ``execution_enqueue``; the WebSocket consumer answers
    ``execution.accepted`` first (the task's publish was ~1.5 ms of it, bench/).

    ``idempotency_key``: a request repeated by the same user with the same key
    within ``IDEMPOTENCY_WINDOW_S`` gets the execution the first one started
    (running or ended) instead of a new one; the same key with another tool
    or other parameters is ``idempotency_conflict``.
    """
    tool = tool_get_active(tool_name)
    jsonguard.parameters_check(parameters)  # what stdio and the CLI parsed themselves: storable JSON only
    parameters = parameters_validate(tool, {} if parameters is None else parameters)
    if idempotency_key is not None:
        earlier = execution_for_idempotency_key(user=user, key=idempotency_key, tool=tool, parameters=parameters)
        if earlier is not None:
            return earlier
    limits_check(user)
    cached = cache.get(cache_key(tool.name, parameters)) if use_cache else None
    queued = cached is None and not inline
    try:
        with transaction.atomic():
            execution = ToolExecution.objects.create(
                tool=tool, user=user, parameters=parameters, celery_task_id=str(uuid.uuid4()) if queued else None,
                idempotency_key=idempotency_key,
            )
    except IntegrityError:  # the same key, at the same moment, from another request: that one won
        earlier = execution_for_idempotency_key(user=user, key=idempotency_key, tool=tool, parameters=parameters)
        if earlier is None:
            raise
        return earlier
    publisher = publisher_for(execution)
    publisher.status(ToolExecution.Status.PENDING)
    if cached is not None:
        execution_answer_from_cache(execution, publisher, cached)
    elif inline:
        from .runner import execution_run

        execution_run(str(execution.pk), use_cache=use_cache)
    elif not defer_enqueue:
        execution_enqueue(execution, use_cache=use_cache)
    return execution


def execution_for_idempotency_key(*, user, key: Any, tool: Tool, parameters: dict[str, Any]) -> ToolExecution | None:
    """The execution an earlier request with this key started, if it is recent enough.

    An older one gives its key up, so the key can start a new execution.
    """
    if not isinstance(key, str) or not 1 <= len(key) <= IDEMPOTENCY_KEY_MAX_CHARS:
        raise InvalidMessage(f"An idempotency key must be a string of 1 to {IDEMPOTENCY_KEY_MAX_CHARS} characters.")
    earlier = ToolExecution.objects.select_related("tool", "user").filter(user=user, idempotency_key=key).first()
    if earlier is None:
        return None
    window = timezone.timedelta(seconds=settings.MCP_CONFIG["IDEMPOTENCY_WINDOW_S"])
    if earlier.created_at < timezone.now() - window:
        ToolExecution.objects.filter(pk=earlier.pk).update(idempotency_key=None)
        return None
    if earlier.tool_id != tool.pk or earlier.parameters != parameters:
        raise IdempotencyConflict(f"The idempotency key {key!r} was used for another request "
                                  f"(execution {earlier.pk}); use a new key for a new request.")
    return earlier


def execution_enqueue(execution: ToolExecution, *, use_cache: bool) -> None:
    """Hand a recorded execution to Celery (nothing to do if it was answered from the cache).

    If the broker refuses it, the execution fails with ``queue_unavailable``
    rather than staying pending, and the error is raised to the caller.
    """
    if execution.celery_task_id is None:
        return
    try:
        _enqueue(execution, use_cache=use_cache)
    except Exception:
        message = "The task queue was unavailable; the execution was not started."
        try:
            publisher_for(execution).finish(failed_event("queue_unavailable", message, duration_ms=0),
                                            on_claimed=lambda: execution_finalize(
                                                execution, status=ToolExecution.Status.FAILED, duration_ms=0,
                                                error=message, error_code="queue_unavailable", attempt=0))
        except Exception:  # the event log is on the same Redis; the reaper ends it later
            logger.warning("Could not fail unqueued execution %s", execution.pk, exc_info=True)
        raise


def _enqueue(execution: ToolExecution, *, use_cache: bool) -> None:
    from .tasks import execute_tool_async

    options: dict[str, Any] = {"task_id": execution.celery_task_id}
    if not settings.EMBEDDED_WORKER:  # the threads pool has no time limits; the runner's deadline holds
        options.update(soft_time_limit=execution.tool.timeout, time_limit=execution.tool.timeout + 30)
    transaction.on_commit(
        # argsrepr/kwargsrepr given: Celery would otherwise saferepr() the arguments
        # of every task it sends (~9% of daphne's CPU in bursts of executes, bench/).
        lambda: execute_tool_async.apply_async(args=[str(execution.pk)], kwargs={"use_cache": use_cache},
                                               argsrepr=repr([str(execution.pk)]),
                                               kwargsrepr=repr({"use_cache": use_cache}), **options)
    )


def publisher_for(execution: ToolExecution) -> ExecutionPublisher:
    return ExecutionPublisher(execution_id=str(execution.pk), tool=execution.tool.name,
                              user=execution.user.get_username())


def execution_answer_from_cache(execution: ToolExecution, publisher: ExecutionPublisher, cached: dict) -> None:
    started = time.monotonic()
    publisher.status(ToolExecution.Status.RUNNING, attempt=1)
    text = cached.get("text", "")
    for start in range(0, len(text), CACHED_PIECE_CHARS):
        publisher.publish({"type": "execution.delta", "text": text[start:start + CACHED_PIECE_CHARS]})
    duration_ms = int((time.monotonic() - started) * 1000)
    result = cached["result"]
    # No tokens spent: the cached result's own usage is not counted again.
    publisher.finish(completed_event(result, duration_ms=duration_ms, cached=True), on_claimed=lambda: execution_finalize(
        execution, status=ToolExecution.Status.COMPLETED, duration_ms=duration_ms, result=result, cached=True,
        attempt=1))


def execution_cancel(*, user, execution_id: Any) -> ToolExecution:
    """End an execution with ``cancelled``; a no-op if it has already ended.

    The terminal event is claimed in the event log first, so a worker that is
    finishing at the same moment cannot also end it; the worker notices on
    its next append and closes the provider stream.
    """
    execution = execution_get_cancellable(user=user, execution_id=execution_id)
    if execution.is_terminal:
        return execution
    duration_ms = int((timezone.now() - execution.created_at).total_seconds() * 1000)
    publisher_for(execution).finish(cancelled_event(duration_ms=duration_ms), on_claimed=lambda: execution_finalize(
        execution, status=ToolExecution.Status.CANCELLED, duration_ms=duration_ms))
    execution.refresh_from_db()
    return execution


def execution_finalize(execution: ToolExecution, *, status: str, duration_ms: int, result: dict | None = None,
                       error_code: str = "", error: str | None = None, cached: bool = False,
                       attempt: int | None = None, input_tokens: int = 0, output_tokens: int = 0) -> None:
    """The one write at the end: result, status and event log on the row, then stats.

    Only the party whose terminal event the log accepted calls this, so it
    runs exactly once per execution.
    """
    events, _ = execution_events(execution.pk)
    fields: dict[str, Any] = {
        "status": status, "duration_ms": duration_ms, "result": result, "error": error,
        "error_code": error_code, "cached": cached, "completed_at": timezone.now(), "events": events,
        "input_tokens": input_tokens, "output_tokens": output_tokens,
    }
    if attempt is not None:
        fields["attempt"] = attempt
    # Conditional: a second finalization (a reaper pass racing another) changes nothing and counts nothing.
    active = ToolExecution.objects.filter(pk=execution.pk, status__in=ToolExecution.ACTIVE_STATUSES)
    if not active.update(**fields):
        return
    stats_record(tool_id=execution.tool_id, status=status, duration_ms=duration_ms, cached=cached,
                 input_tokens=input_tokens, output_tokens=output_tokens)
    get_event_log().expire(str(execution.pk), settings.EVENT_LOG_TTL_S)


def stats_record(*, tool_id: int, status: str, duration_ms: int, cached: bool = False,
                 input_tokens: int = 0, output_tokens: int = 0) -> None:
    """Count one ended execution with F() expressions: no lost updates."""
    changes: dict[str, Any] = {
        "total_executions": F("total_executions") + 1,
        "input_tokens": F("input_tokens") + input_tokens,
        "output_tokens": F("output_tokens") + output_tokens,
        "last_execution": timezone.now(),
    }
    if status == ToolExecution.Status.COMPLETED:
        changes["successful_executions"] = F("successful_executions") + 1
        changes["total_duration_ms"] = F("total_duration_ms") + duration_ms
    elif status == ToolExecution.Status.FAILED:
        changes["failed_executions"] = F("failed_executions") + 1
    elif status == ToolExecution.Status.CANCELLED:
        changes["cancelled_executions"] = F("cancelled_executions") + 1
    if cached:
        changes["cached_executions"] = F("cached_executions") + 1
    if not ToolUsageStats.objects.filter(tool_id=tool_id).update(**changes):
        ToolUsageStats.objects.get_or_create(tool_id=tool_id)
        ToolUsageStats.objects.filter(tool_id=tool_id).update(**changes)


def result_cache_store(tool: Tool, parameters: dict[str, Any], result: dict[str, Any]) -> None:
    text = result.get(STREAMED_FIELD.get(tool.name, ""), "")
    cache.set(cache_key(tool.name, parameters), {"result": result, "text": text},
              settings.MCP_CONFIG["CACHE_TTL"])

