"""Writes: the one path every entry point takes to start, run and cancel a tool.

WebSocket ``execute``, REST ``execute``/``execute_async``, MCP ``tools/call``
and the admin's re-run all call ``execution_start`` (or
``execution_start_uncached`` when the client asked not to be answered from
the cache)::

    execution = execution_start(user=user, tool_name="generate_report", parameters={"data": {...}})

It checks that the user may use the tool, validates the parameters against
its JSON Schema, applies the user's limits, looks the result cache up,
records the ``ToolExecution`` with its event log started (``pending``, seq 1,
written before the row's commit makes it claimable), and then answers from
the cache (a cache hit is still an execution: recorded, streamed, counted,
but never queued, so no engine can claim it) or puts it in the queue: the
row waits as ``pending`` and a Celery message — a token — lets a worker
engine claim the next execution by fair share (``engine/claims.py``).
``manage.py run_tool`` records one with ``execution_prepare`` and runs it in
its own process.

A request repeated with the same idempotency key gets the execution the
first one started (``execution_for_idempotency_key``); that execution comes
back with ``reattached = True``.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from . import jsonguard, metrics, outcomes
from .errors import IdempotencyConflict, InvalidMessage, QueueUnavailable
from .events import cancelled_event, completed_event, delta_event, failed_event, new_epoch, status_event
from .events.writer import EventWriter
from .limits import limits_check
from .models import Tool, ToolExecution
from .parameters import parameters_validate
from .results_cache import CachedAnswer, result_cache_lookup
from .selectors import execution_get_cancellable, tool_get_usable

logger = logging.getLogger(__name__)

# A cached text is replayed in pieces of this size, so clients see it stream.
CACHED_PIECE_CHARS = 256
IDEMPOTENCY_KEY_MAX_CHARS = 200
RUN_TASK = "mcp_tools.execute_tool_async"


def execution_start(
    *, user, tool_name: Any, parameters: Any = None, idempotency_key: str | None = None
) -> ToolExecution:
    """Record an execution and answer it from the cache, or queue it."""
    request, earlier = _admit(user=user, tool_name=tool_name, parameters=parameters, idempotency_key=idempotency_key)
    if earlier is not None:
        return _reattached(earlier)
    # Looked up before the row exists: an answered execution is never queued, so no engine can claim it.
    cached = _cache_lookup(request.tool, request.parameters)
    execution, created = _record(request, celery_task_id=None if cached else _new_task_id())
    if created and cached is not None:
        _answer(execution, cached)
    elif created:
        _enqueue(execution)
    execution.reattached = not created
    return execution


def execution_start_uncached(
    *, user, tool_name: Any, parameters: Any = None, idempotency_key: str | None = None
) -> ToolExecution:
    """Record an execution and queue it, whatever the cache holds."""
    request, earlier = _admit(user=user, tool_name=tool_name, parameters=parameters, idempotency_key=idempotency_key)
    if earlier is not None:
        return _reattached(earlier)
    execution, created = _record(request, celery_task_id=_new_task_id())
    if created:
        _enqueue(execution)
    execution.reattached = not created
    return execution


def execution_prepare(*, user, tool_name: Any, parameters: Any = None) -> ToolExecution:
    """Record an execution that the caller runs itself (``engine.run_here``), outside the queue."""
    request, _ = _admit(user=user, tool_name=tool_name, parameters=parameters, idempotency_key=None)
    execution, _ = _record(request, celery_task_id=None)
    return execution


@dataclass(frozen=True)
class _Request:
    user: Any
    tool: Tool
    parameters: dict[str, Any]
    idempotency_key: str | None


def _admit(
    *, user, tool_name: Any, parameters: Any, idempotency_key: str | None
) -> tuple[_Request, ToolExecution | None]:
    """May this user run it, now, with these parameters? Also the execution an earlier request with the
    same idempotency key started (then the limits do not apply: nothing new starts)."""
    tool = tool_get_usable(user=user, name=tool_name)
    jsonguard.parameters_check(parameters)  # what stdio and the CLI parsed themselves: storable JSON only
    parameters = parameters_validate(tool, {} if parameters is None else parameters)
    request = _Request(user=user, tool=tool, parameters=parameters, idempotency_key=idempotency_key)
    if idempotency_key is not None:
        earlier = execution_for_idempotency_key(user=user, key=idempotency_key, tool=tool, parameters=parameters)
        if earlier is not None:
            return request, earlier
    limits_check(user)
    return request, None


def _new_task_id() -> str:
    return str(uuid.uuid4())


def _record(request: _Request, *, celery_task_id: str | None) -> tuple[ToolExecution, bool]:
    """The new execution, pending, with its log started; or the earlier one for the same key (False)."""
    try:
        with transaction.atomic():
            execution = ToolExecution.objects.create(
                tool=request.tool,
                user=request.user,
                parameters=request.parameters,
                epoch=new_epoch(),
                idempotency_key=request.idempotency_key,
                celery_task_id=celery_task_id,
            )
            execution.tool, execution.user = request.tool, request.user
            # Before the commit: once other connections see the row, any engine's token may claim it, and
            # its run must find the log started. If the log cannot be written, no row is left behind.
            writer_for(execution).create(status_event("pending"))
    except IntegrityError:  # the same key, at the same moment, from another request: that one won
        earlier = execution_for_idempotency_key(
            user=request.user, key=request.idempotency_key, tool=request.tool, parameters=request.parameters
        )
        if earlier is None:
            raise
        return earlier, False
    metrics.execution_started(request.tool)
    return execution, True


def _reattached(execution: ToolExecution) -> ToolExecution:
    execution.reattached = True
    return execution


def writer_for(execution: ToolExecution, *, epoch: str | None = None) -> EventWriter:
    return EventWriter(
        execution_id=str(execution.pk),
        tool=execution.tool.name,
        user=execution.user.get_username(),
        epoch=epoch or execution.epoch,
    )


def execution_for_idempotency_key(*, user, key: Any, tool: Tool, parameters: dict[str, Any]) -> ToolExecution | None:
    """The execution an earlier request with this key started, if it is recent enough.

    An older one gives its key up, so the key can start a new execution.
    """
    if not isinstance(key, str) or not 1 <= len(key) <= IDEMPOTENCY_KEY_MAX_CHARS:
        raise InvalidMessage(f"An idempotency key must be a string of 1 to {IDEMPOTENCY_KEY_MAX_CHARS} characters.")
    earlier = ToolExecution.objects.select_related("tool", "user").filter(user=user, idempotency_key=key).first()
    if earlier is None:
        return None
    window = timedelta(seconds=settings.MCP_CONFIG["IDEMPOTENCY_WINDOW_S"])
    if earlier.created_at < timezone.now() - window:
        ToolExecution.objects.filter(pk=earlier.pk).update(idempotency_key=None)
        return None
    if earlier.tool_id != tool.pk or earlier.parameters != parameters:
        raise IdempotencyConflict(
            f"The idempotency key {key!r} was used for another request "
            f"(execution {earlier.pk}); use a new key for a new request."
        )
    return earlier


def execution_answer_from_cache(execution: ToolExecution) -> bool:
    """Stream a cached result as a recorded, unqueued execution's answer; False if the cache has none."""
    cached = _cache_lookup(execution.tool, execution.parameters)
    if cached is None:
        return False
    _answer(execution, cached)
    return True


def _cache_lookup(tool: Tool, parameters: dict[str, Any]) -> CachedAnswer | None:
    if not tool.cacheable:
        return None
    cached = result_cache_lookup(tool.name, parameters)
    metrics.cache_looked_up(tool.name, hit=cached is not None)
    return cached


def _answer(execution: ToolExecution, cached: CachedAnswer) -> None:
    text = cached.text
    events = [status_event("running", attempt=1)]
    events += [delta_event(text[i : i + CACHED_PIECE_CHARS]) for i in range(0, len(text), CACHED_PIECE_CHARS)]
    # No tokens spent: the cached result's own usage is not counted again.
    events.append(completed_event(cached.result, duration_ms=0, cached=True, attempt=1))
    outcomes.end_execution(execution, writer=writer_for(execution), events=events)


def _enqueue(execution: ToolExecution) -> None:
    """Queue a recorded execution. If the broker refuses its token, it fails with ``queue_unavailable``
    (rather than waiting for ever) and ``QueueUnavailable`` (holding the execution) is raised."""
    try:
        execution_send_tokens([execution])
    except Exception as exc:
        logger.warning("Execution %s could not be queued", execution.pk, exc_info=True)
        message = "The task queue was unavailable; the execution was not started."
        try:
            outcomes.end_execution(
                execution,
                writer=writer_for(execution),
                events=[failed_event("queue_unavailable", message, duration_ms=0, attempt=0)],
            )
        except Exception:  # the event log is on the same Redis; the reaper rescues it later
            logger.warning("Could not fail unqueued execution %s", execution.pk, exc_info=True)
        raise QueueUnavailable(execution) from exc


def execution_send_tokens(executions: list[ToolExecution]) -> None:
    """Send one Celery token per execution (after the current transaction commits)."""

    def send() -> None:
        for execution in executions:
            # argsrepr given: Celery would otherwise saferepr() the arguments of every task it sends.
            current_app.send_task(
                RUN_TASK,
                args=[str(execution.pk)],
                task_id=execution.celery_task_id or None,
                argsrepr=f"['{execution.pk}']",
                kwargsrepr="{}",
            )

    transaction.on_commit(send)


def execution_cancel(*, user, execution_id: Any) -> ToolExecution:
    """Ask for an execution to end ``cancelled``; a no-op if it has already ended.

    A queued execution is ended here. A running one is ended by the engine
    running it, within ``CONTROL_POLL_S``, with the tokens it had spent (or by
    a reaper, if that engine is gone); the cancel is recorded in the event log
    first, so it cannot be lost. Either way exactly one terminal event is
    logged, and whoever logged it wrote the row.
    """
    execution = execution_get_cancellable(user=user, execution_id=execution_id)
    if execution.is_terminal:
        return execution
    writer = writer_for(execution)
    if writer.log.request_cancel(str(execution.pk)) and not execution.worker:
        duration_ms = int((timezone.now() - execution.created_at).total_seconds() * 1000)
        outcomes.end_execution(
            execution, writer=writer, events=[cancelled_event(duration_ms=duration_ms, attempt=execution.attempt)]
        )
    execution.refresh_from_db()
    return execution
