"""Nothing stays running forever: worker heartbeats and the reaper.

While a worker runs an execution, its ``Heartbeat`` renews a cache key
every ``HEARTBEAT_INTERVAL_S`` (the cache is Redis in production: no database
write per beat). If the worker process dies, Celery redelivers the task (late
acks, reject on worker lost) and the next worker restarts the execution; if
it never comes back — the whole node is gone, the broker lost the message —
the key expires, and ``executions_reap`` (a Celery beat task every
``REAPER_INTERVAL_S``; a thread in the embedded default) ends the execution:

* if its event log already holds a terminal event (the worker ended it but
  could not write the row, e.g. the database was down), the row is repaired
  from the log;
* otherwise it is ended with ``failed`` / ``worker_lost``, through the event
  log like any other terminal event, so a late worker cannot also end it.
"""
from __future__ import annotations

import logging
import os
import threading
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from .eventlog import TERMINAL_TYPES, get_event_log
from .events import failed_event
from .models import ToolExecution

logger = logging.getLogger(__name__)


def _key(execution_id: str) -> str:
    return f"heartbeat:{execution_id}"


def heartbeat_alive(execution_id: str) -> bool:
    return cache.get(_key(execution_id)) is not None


class Heartbeat:
    """``with Heartbeat(execution_id): ...`` beats until the block ends.

    One beater thread per process renews every running execution's key in one
    ``set_many`` per interval: a thread (and a cache connection) per execution
    cost the worker a Redis connect per execution at 100 starts a second
    (bench/ --profile).
    """

    def __init__(self, execution_id: str) -> None:
        self.execution_id = execution_id

    def __enter__(self) -> Heartbeat:
        _beater().add(self.execution_id)
        return self

    def __exit__(self, *exc_info: object) -> None:
        _beater().discard(self.execution_id)
        try:
            cache.delete(_key(self.execution_id))
        except Exception:
            logger.warning("Heartbeat for %s could not be removed", self.execution_id, exc_info=True)


class _Beater:
    def __init__(self) -> None:
        self.pid = os.getpid()
        self._lock = threading.Lock()
        self._running: set[str] = set()
        self._wake = threading.Event()
        threading.Thread(target=self._run, name="heartbeat", daemon=True).start()

    def add(self, execution_id: str) -> None:
        with self._lock:
            self._running.add(execution_id)
        self.beat([execution_id])  # at once: the reaper must never see a started run without a beat

    def discard(self, execution_id: str) -> None:
        with self._lock:
            self._running.discard(execution_id)

    def beat(self, execution_ids: list[str]) -> None:
        if not execution_ids:
            return
        now = timezone.now().timestamp()
        try:
            cache.set_many({_key(e): now for e in execution_ids}, timeout=settings.MCP_CONFIG["HEARTBEAT_STALE_S"])
        except Exception:  # a cache outage must not kill the runs; the reaper is generous
            logger.warning("Heartbeats for %d executions could not be written", len(execution_ids), exc_info=True)

    def _run(self) -> None:
        while not self._wake.wait(settings.MCP_CONFIG["HEARTBEAT_INTERVAL_S"]):
            with self._lock:
                running = list(self._running)
            self.beat(running)


_beater_instance: _Beater | None = None
_beater_lock = threading.Lock()


def _beater() -> _Beater:
    global _beater_instance
    with _beater_lock:
        if _beater_instance is None or _beater_instance.pid != os.getpid():  # a forked child beats for itself
            _beater_instance = _Beater()
        return _beater_instance


def stale_executions() -> list[ToolExecution]:
    """Active executions with no heartbeat that should have one by now."""
    config = settings.MCP_CONFIG
    now = timezone.now()
    running = ToolExecution.objects.filter(
        status__in=[ToolExecution.Status.RUNNING, ToolExecution.Status.RETRYING],
        started_at__lt=now - timedelta(seconds=config["HEARTBEAT_STALE_S"]))
    pending = ToolExecution.objects.filter(
        status=ToolExecution.Status.PENDING, created_at__lt=now - timedelta(seconds=config["PENDING_STALE_S"]))
    candidates = list(running.select_related("tool", "user")) + list(pending.select_related("tool", "user"))
    return [e for e in candidates if not heartbeat_alive(str(e.pk))]


def execution_reap(execution: ToolExecution) -> str:
    """End one stale execution; returns what was done."""
    from .services import execution_finalize, publisher_for

    execution_id = str(execution.pk)
    log = get_event_log()
    duration_ms = int((timezone.now() - (execution.started_at or execution.created_at)).total_seconds() * 1000)
    if log.is_ended(execution_id):
        terminal = log.read(execution_id, log.last_seq(execution_id) - 1)[-1]
        assert terminal["type"] in TERMINAL_TYPES
        execution_finalize(execution, status=terminal["status"], duration_ms=terminal.get("duration_ms", duration_ms),
                           result=terminal.get("result"), error=(terminal.get("error") or {}).get("message"),
                           error_code=(terminal.get("error") or {}).get("code", ""))
        return "repaired"
    event = failed_event("worker_lost", "The worker running this execution stopped and did not come back.",
                         duration_ms=duration_ms)
    claimed = publisher_for(execution).finish(event, on_claimed=lambda: execution_finalize(
        execution, status=ToolExecution.Status.FAILED, duration_ms=duration_ms, error=event["error"]["message"],
        error_code="worker_lost"))
    return "failed" if claimed else "ended meanwhile"


def executions_reap() -> dict[str, int]:
    done: dict[str, int] = {}
    for execution in stale_executions():
        try:
            outcome = execution_reap(execution)
        except Exception:
            logger.exception("Could not reap execution %s", execution.pk)
            outcome = "error"
        logger.warning("Reaped stale execution %s: %s", execution.pk, outcome)
        done[outcome] = done.get(outcome, 0) + 1
    return done


def start_reaper_thread() -> None:
    """The embedded default has no beat process: reap from a daemon thread."""
    def loop() -> None:
        while True:
            try:
                executions_reap()
            except Exception:
                logger.exception("Reaper pass failed")
            stop.wait(settings.MCP_CONFIG["REAPER_INTERVAL_S"])

    stop = threading.Event()
    threading.Thread(target=loop, name="embedded-reaper", daemon=True).start()
