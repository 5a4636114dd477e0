"""Nothing is lost and nothing stays running: heartbeats, the control poll, the reaper.

Every engine renews its key in the cache (``engine:<worker id>``, Redis in
production) every ``HEARTBEAT_INTERVAL_S``, from a thread of its own (not
queued behind the loop's work) as long as its loop still comes round; it expires after
``HEARTBEAT_STALE_S``. Every row being run names its engine (``worker``). A
reaper pass takes an engine for dead once its key has been missing for two
heartbeat intervals in a row (one missing look is not enough: a Redis that
restarted without its data has lost every key until the engines beat
again). So when a worker process or its whole host dies, its executions are
found within ``HEARTBEAT_STALE_S + 2 × HEARTBEAT_INTERVAL_S +
REAPER_INTERVAL_S`` (12 s with the defaults), and for each one:

* if its log already ends (the engine died between logging the end and
  writing the row) — the row is repaired from the log;
* if a cancel was asked — it ends ``cancelled``;
* if its tool is repeatable and attempts remain — it goes back to the queue
  as a new attempt, announced with ``retrying`` (reason ``worker_lost``), so
  clients drop the partial text and follow the next attempt; the announcement
  raises the log's attempt, so the lost engine, if it was only cut off, can no
  longer write;
* otherwise it ends ``failed`` (``worker_lost``).

Each step is conditional (the row still names the dead engine, the log still
open): reapers racing each other, or the lost engine coming back, change
nothing twice. An engine with free slots also replaces tokens a broker lost:
executions waiting longer than ``PENDING_RESCUE_S`` get a new one (a spare
token finds nothing and is done).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from .. import outcomes
from ..events import Refused, cancelled_event, failed_event, get_event_log, status_event
from ..events.writer import EventWriter
from ..models import ToolExecution
from ..services import execution_send_tokens
from . import claims
from .host import Host

logger = logging.getLogger(__name__)

WORKER_LOST_MESSAGE = "The worker running it stopped."


def heartbeat_key(worker_id: str) -> str:
    return f"engine:{worker_id}"


def beat(worker_id: str) -> None:
    cache.set(heartbeat_key(worker_id), timezone.now().timestamp(), timeout=settings.MCP_CONFIG["HEARTBEAT_STALE_S"])


# A loop that has not come round for this long is wedged, not busy: its heartbeat stops.
LOOP_STALL_S = 60.0


class Heartbeat:
    """This engine's key, renewed by a thread of its own while the engine's loop still comes round.

    Not on the loop, nor through the database threads: with a thousand runs starting, the
    loop's turn and the queue of database calls took longer than the stale window, and a
    reaper elsewhere took this live engine for dead (measured in bench/run.py, docs/benchmarks.md).
    A dead process stops beating at once; a wedged loop (``loop_ticked`` not called for
    ``LOOP_STALL_S``) stops it too, so its executions still run again elsewhere."""

    def __init__(self, worker_id: str, *, interval_s: float) -> None:
        self.worker_id = worker_id
        self.interval_s = interval_s
        self.loop_ticked_at = time.monotonic()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat_while_running, name="engine-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def loop_ticked(self) -> None:
        self.loop_ticked_at = time.monotonic()

    def stop(self) -> None:
        """A clean stop: the key goes at once, so what is left behind runs again without waiting."""
        self._stopped.set()
        self._thread.join(self.interval_s + 5)
        try:
            cache.delete(heartbeat_key(self.worker_id))
        except Exception:
            logger.warning("The engine's heartbeat could not be removed", exc_info=True)

    def _beat_while_running(self) -> None:
        while not self._stopped.is_set():
            stalled_s = time.monotonic() - self.loop_ticked_at
            try:
                if stalled_s < LOOP_STALL_S:
                    beat(self.worker_id)
                else:
                    logger.error("The engine's loop has not run for %.0f s; its heartbeat stops", stalled_s)
            except Exception:  # a cache outage must not stop the runs; the stale window is generous
                logger.warning("The engine's heartbeat could not be written", exc_info=True)
            self._stopped.wait(self.interval_s)


async def loop_ticker(engine: Host) -> None:
    """Tell the heartbeat that the loop still comes round."""
    while True:
        engine.heartbeat.loop_ticked()
        await asyncio.sleep(engine.config["HEARTBEAT_INTERVAL_S"])


async def control_loop(engine: Host) -> None:
    """Stop runs whose log says so, even when their tool is silent."""
    while True:
        await asyncio.sleep(engine.config["CONTROL_POLL_S"])
        runs = dict(engine.runs)
        if not runs:
            continue
        known = {execution_id: (run.publisher.epoch, run.attempt) for execution_id, run in runs.items()}
        try:
            facts = await engine.log.afacts_news(known)
        except Exception:
            logger.warning("The control poll could not read the event log", exc_info=True)
            continue
        for execution_id, fact in facts.items():
            run = runs[execution_id]
            asked_epoch = known[execution_id][0]
            if fact.epoch != asked_epoch:
                if run.publisher.epoch == asked_epoch:  # else it started a new log meanwhile
                    run.stop("lost")
            elif fact.ended:
                run.stop("ended")
            elif fact.attempt > run.attempt:
                run.stop("stale")
            elif fact.cancel_asked:
                run.stop("cancel")


async def reaper_loop(engine: Host) -> None:
    missing_since: dict[str, float] = {}  # engine id -> when this reaper first saw its key missing
    while True:
        await asyncio.sleep(engine.config["REAPER_INTERVAL_S"])
        try:
            done = await engine.db(reap, free_slots=engine.free_slots(), missing_since=missing_since)
        except Exception:
            logger.exception("A reaper pass failed")
            continue
        if done:
            logger.warning("Reaper: %s", done)


def reap(*, free_slots: int, missing_since: dict[str, float] | None = None) -> dict[str, int]:
    """One pass: executions of dead engines, and tokens lost while executions wait.

    ``missing_since`` is the reaper's memory between passes (None: a key missing once is enough)."""
    done: dict[str, int] = {}
    workers = set(ToolExecution.objects.filter(claims.RUNNING).values_list("worker", flat=True).distinct())
    if workers:
        dead = dead_engines(workers, missing_since)
        for execution in ToolExecution.objects.filter(claims.RUNNING, worker__in=dead).select_related("tool", "user"):
            try:
                outcome = execution_reap(execution)
            except Exception:
                logger.exception("Could not reap execution %s", execution.pk)
                outcome = "error"
            done[outcome] = done.get(outcome, 0) + 1
    if free_slots > 0:
        rescued = rescue_tokens(limit=free_slots)
        if rescued:
            done["tokens replaced"] = rescued
    return done


def dead_engines(workers: set[str], missing_since: dict[str, float] | None) -> list[str]:
    """The engines among ``workers`` whose heartbeat key has been missing for two intervals."""
    alive = cache.get_many([heartbeat_key(w) for w in workers])
    missing = [w for w in workers if heartbeat_key(w) not in alive]
    if missing_since is None:
        return missing
    now = time.monotonic()
    for worker in list(missing_since):
        if worker not in missing:
            del missing_since[worker]
    grace = 2 * settings.MCP_CONFIG["HEARTBEAT_INTERVAL_S"]
    return [w for w in missing if now - missing_since.setdefault(w, now) >= grace]


def reap_one(execution_id: str) -> str:
    """What the reaper does for a dead engine's execution, for one whose run broke in a live engine."""
    execution = ToolExecution.objects.filter(claims.RUNNING, pk=execution_id).select_related("tool", "user").first()
    return "ended meanwhile" if execution is None else execution_reap(execution)


def execution_reap(execution: ToolExecution) -> str:
    """Deal with one execution whose engine is gone; says what was done."""
    execution_id = str(execution.pk)
    facts = get_event_log().facts(execution_id)
    if facts.ended:
        return "repaired" if outcomes.repair_from_log(execution) else "ended meanwhile"
    writer = EventWriter(
        execution_id=execution_id,
        tool=execution.tool.name,
        user=execution.user.get_username(),
        epoch=facts.epoch or execution.epoch,
    )
    duration_ms = int((timezone.now() - (execution.started_at or execution.created_at)).total_seconds() * 1000)
    max_attempts = settings.MCP_CONFIG["MAX_RETRIES"] + 1
    if facts.cancel_asked:
        ended = outcomes.end_execution(
            execution, writer=writer, events=[cancelled_event(duration_ms=duration_ms, attempt=execution.attempt)]
        )
        return "cancelled" if ended else "ended meanwhile"
    why_not = _why_not_again(execution, max_attempts)
    if why_not:
        ended = outcomes.end_execution(
            execution,
            writer=writer,
            events=[
                failed_event(
                    "worker_lost",
                    f"The worker running this execution stopped and it was not run again ({why_not}).",
                    duration_ms=duration_ms,
                    attempt=execution.attempt,
                )
            ],
        )
        return "failed" if ended else "ended meanwhile"
    if not claims.release(execution_id, worker=execution.worker, attempt=execution.attempt):
        return "moved on"
    attempt = execution.attempt + 1
    [appended] = writer.append(
        [status_event("retrying", attempt=attempt, reason="worker_lost", message=WORKER_LOST_MESSAGE)], attempt=attempt
    )
    if appended.refused == Refused.ENDED:
        return "repaired" if outcomes.repair_from_log(execution) else "ended meanwhile"
    execution_send_tokens([execution])
    return "requeued"


def _why_not_again(execution: ToolExecution, max_attempts: int) -> str:
    if not execution.tool.repeatable:
        return "its tool is not safe to repeat"
    if execution.attempt >= max_attempts:
        return "no attempts left"
    if not execution.celery_task_id:
        return "it was run by a process of its own, manage.py run_tool"
    return ""


def rescue_tokens(*, limit: int) -> int:
    """Executions waiting past PENDING_RESCUE_S while this engine has room: their tokens were lost."""
    before = timezone.now() - timedelta(seconds=settings.MCP_CONFIG["PENDING_RESCUE_S"])
    stuck = list(
        ToolExecution.objects.filter(claims.QUEUED, created_at__lt=before)
        .select_related("tool")
        .order_by("created_at")[:limit]
    )
    if stuck:
        execution_send_tokens(stuck)
    return len(stuck)
