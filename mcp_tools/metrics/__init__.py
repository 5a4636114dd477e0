"""Prometheus metrics: what the service did, counted where it happened, read at ``/metrics``.

The code that does a thing makes one call here; this package owns every
name, label and bucket (``instruments.py``) and keeps label values bounded
(``labels.py``)::

    metrics.execution_started(tool)                        # services: a new execution was recorded
    metrics.execution_ended(tool_id=tool_id, event=event)  # outcomes.record_end: every ending, exactly once
    GET /metrics    Authorization: Token <a staff user's key>   or   Bearer <METRICS_BEARER_TOKEN>

An execution starts in a daphne process and usually ends in a ``celery
worker`` process. With ``PROMETHEUS_MULTIPROC_DIR`` set — one directory per
host, shared by every process of the service on it — each process writes its
values there and ``/metrics`` (``views.py``) merges them, so one scrape shows
the whole host. Without it (the embedded default: one process) values live in
memory. The README's "Metrics" section lists every metric.
"""

from __future__ import annotations

import functools
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from django.db import transaction

from .instruments import (
    CACHE_LOOKUPS,
    CONNECTIONS,
    DELTAS_RELAYED,
    DURATION,
    EXECUTIONS_ENDED,
    EXECUTIONS_STARTED,
    FIRST_TOKEN,
    LOG_APPEND,
    LOG_LAG,
    QUEUE_WAIT,
    RATE_LIMIT_REFUSALS,
    TOKENS,
)
from .labels import error_code_label, model_label

if TYPE_CHECKING:
    from ..models import Tool, ToolExecution

DELTA = "execution.delta"

# --- Executions.


def execution_started(tool: Tool) -> None:
    """Called when an execution has been recorded (``services``)."""
    _remember_tool(tool)
    EXECUTIONS_STARTED.labels(tool=tool.name).inc()


def execution_claimed(execution: ToolExecution) -> None:
    """Called when a worker has claimed an execution: its queue wait, on the first claim of a queued one."""
    _remember_tool(execution.tool)
    if execution.attempt == 1 and execution.celery_task_id and execution.started_at:
        waited = (execution.started_at - execution.created_at).total_seconds()
        QUEUE_WAIT.labels(tool=execution.tool.name).observe(max(waited, 0.0))


def execution_ended(*, tool_id: int, event: dict[str, Any]) -> None:
    """Called by ``outcomes.record_end`` once it wrote an ending; counted when its transaction commits."""
    transaction.on_commit(functools.partial(_count_end, tool_id, event))


def _count_end(tool_id: int, event: dict[str, Any]) -> None:
    tool = tool_name(tool_id)
    status = str(event.get("status", ""))
    error = event.get("error") or {}
    error_code = error_code_label(error.get("code")) if status == "failed" else ""
    EXECUTIONS_ENDED.labels(tool=tool, status=status, error_code=error_code).inc()
    if not event.get("cached"):
        DURATION.labels(tool=tool, status=status).observe(max(event.get("duration_ms") or 0, 0) / 1000)
    usage = event.get("usage") or {}
    model = model_label(event)
    for kind in ("input", "output"):
        spent = usage.get(f"{kind}_tokens")
        if isinstance(spent, int) and spent > 0:
            TOKENS.labels(tool=tool, model=model, type=kind).inc(spent)


def first_text_timer(execution: ToolExecution, send_text: Callable[[str], None]) -> Callable[[str], None]:
    """``send_text`` that also observes the time from the request to the execution's first streamed text."""
    return _FirstText(execution, send_text)


# Executions whose first text was observed (a later attempt's first text is not the first).
_streamed: weakref.WeakSet = weakref.WeakSet()


class _FirstText:
    __slots__ = ("execution", "send", "pending")

    def __init__(self, execution: ToolExecution, send: Callable[[str], None]) -> None:
        self.execution = execution
        self.send = send
        self.pending = execution not in _streamed

    def __call__(self, piece: str) -> None:
        self.send(piece)
        if self.pending and piece:
            self.pending = False
            _streamed.add(self.execution)
            waited = time.time() - self.execution.created_at.timestamp()
            FIRST_TOKEN.labels(tool=self.execution.tool.name).observe(max(waited, 0.0))


# --- Tool names by id: learned from the rows that pass by, so counting an ending costs no query.

_tool_names: dict[int, str] = {}
_tool_names_lock = threading.Lock()


def _remember_tool(tool: Tool) -> None:
    if _tool_names.get(tool.pk) != tool.name:  # a renamed tool, or an id given again after a database reset
        with _tool_names_lock:
            _tool_names[tool.pk] = tool.name


def tool_name(tool_id: int) -> str:
    name = _tool_names.get(tool_id)
    if name is None:
        from ..models import Tool

        name = Tool.objects.filter(pk=tool_id).values_list("name", flat=True).first() or "unknown"
        with _tool_names_lock:
            _tool_names[tool_id] = name
    return name


# --- Cache and limits.


def cache_looked_up(tool: str, *, hit: bool) -> None:
    """Called after a cacheable tool's result was looked up in the cache."""
    CACHE_LOOKUPS.labels(tool=tool, result="hit" if hit else "miss").inc()


def rate_limited(limit: str) -> None:
    """Called when a per-user limit refuses a request: ``concurrent``, ``per_minute``, ``ws_connections``."""
    RATE_LIMIT_REFUSALS.labels(limit=limit).inc()


# --- Connections and delivery.


def connection_opened(transport: str) -> None:
    """Called when a client connection of ``transport`` (websocket, sse, mcp) is accepted."""
    CONNECTIONS.labels(transport=transport).inc()


def connection_closed(transport: str) -> None:
    """Called once for every ``connection_opened``, when that connection ends."""
    CONNECTIONS.labels(transport=transport).dec()


@asynccontextmanager
async def connection(transport: str):
    """A connection open for the duration of the block."""
    connection_opened(transport)
    try:
        yield
    finally:
        connection_closed(transport)


def events_relayed(transport: str, events: Iterable[dict[str, Any]]) -> None:
    """Called with events just sent to a client; the deltas among them are counted."""
    deltas = sum(1 for event in events if event.get("type") == DELTA)
    if deltas:
        DELTAS_RELAYED.labels(transport=transport).inc(deltas)


def log_read(cursor: Any, snapshot: Any) -> None:
    """Called when a follower has read the log (``delivery.catch_up``), before it takes the events.

    A follower's first read is its replay, not lag: only later reads (idle
    polls, gap fills) of the same epoch count."""
    if cursor.epoch is not None and snapshot.epoch == cursor.epoch:
        LOG_LAG.observe(max(snapshot.last_seq - cursor.delivered, 0))


def now() -> float:
    return time.monotonic()


def log_appended(started: float) -> None:
    """Called when an outbox batch begun at ``started`` (``now()``) has been appended to the log."""
    LOG_APPEND.observe(time.monotonic() - started)
