"""The engine: one asyncio event loop per worker process, holding every running execution.

A Claude stream (or a script, or an HTTP call) is almost all waiting, so a
run is a coroutine, not a process or a thread: one loop in a thread of its
own runs them all side by side, with the event outbox (``events/outbox.py``)
batching their appends. Celery hands work in (``pool.py``; the task, in
``runner.py``, ``submit``s the run); database writes go to a small thread
pool (``db``), never onto the loop. Beside the runs, three small loops keep the
service exact:

* heartbeat — this engine's key in the cache, renewed every
  ``HEARTBEAT_INTERVAL_S`` by a thread of its own while the loop still comes
  round (``liveness.Heartbeat``); rows being run carry the engine's ``worker`` id;
* control — every ``CONTROL_POLL_S`` the facts of all running logs in one
  round trip: a cancel asked, an end or a newer attempt elsewhere, a lost log
  stop the run at once even when its tool is silent;
* reaper — every ``REAPER_INTERVAL_S`` (``liveness.py``): executions of dead
  engines run again (or fail ``worker_lost``), rows are repaired from their
  logs, lost tokens are replaced.

``get_engine()`` is the process's engine (a forked child builds its own).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from django.conf import settings
from django.db import close_old_connections

from ..events import get_event_log
from ..events.coalesce import Coalescer
from ..events.outbox import Outbox
from ..events.publisher import EventListener, ExecutionPublisher
from ..models import ToolExecution
from ..providers import get_provider
from ..tools.registry import load_tools
from . import liveness
from .host import RunControl

logger = logging.getLogger(__name__)


class Engine:
    def __init__(self, *, capacity: int) -> None:
        self.capacity = capacity
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.pid = os.getpid()
        self.log = get_event_log()
        self.config = settings.MCP_CONFIG
        self.runs: dict[str, RunControl] = {}
        self.loop = asyncio.new_event_loop()
        self._db_pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.config["ENGINE_DB_THREADS"], thread_name_prefix="engine-db"
        )
        self._started = threading.Event()
        self._background: list[asyncio.Task] = []
        self.outbox: Outbox | None = None
        _load_what_runs_need()
        self.heartbeat = liveness.Heartbeat(self.worker_id, interval_s=self.config["HEARTBEAT_INTERVAL_S"])
        self._thread = threading.Thread(target=self._serve, name="engine-loop", daemon=True)
        self._thread.start()
        self._started.wait()
        self.heartbeat.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.outbox = Outbox(self.log)
        for job in (liveness.loop_ticker, liveness.control_loop, liveness.reaper_loop):
            self._background.append(self.loop.create_task(job(self), name=job.__name__))
        self.loop.call_soon(self._started.set)
        self.loop.run_forever()

    # --- Work in.

    def submit(self, coroutine: Coroutine[Any, Any, Any]) -> concurrent.futures.Future:
        """Run ``coroutine`` on the engine's loop; thread-safe."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def free_slots(self) -> int:
        return self.capacity - len(self.runs)

    # --- Helpers for runs.

    async def db(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a database (or other blocking) call in the engine's thread pool."""
        return await self.loop.run_in_executor(
            self._db_pool, functools.partial(_in_connection, function, *args, **kwargs)
        )

    def publisher(
        self,
        execution: ToolExecution,
        *,
        attempt: int,
        epoch: str | None = None,
        listener: EventListener | None = None,
        on_signal: Callable[[], None] | None = None,
    ) -> ExecutionPublisher:
        assert self.outbox is not None
        return ExecutionPublisher(
            execution_id=str(execution.pk),
            tool=execution.tool.name,
            user=execution.user.get_username(),
            epoch=epoch or execution.epoch,
            attempt=attempt,
            outbox=self.outbox,
            listener=listener,
            on_signal=on_signal,
            coalescer=Coalescer(
                window_s=self.config["COALESCE_MS"] / 1000,
                max_bytes=self.config["COALESCE_BYTES"],
                deltas_per_s=self.config["COALESCE_DELTAS_PER_S"],
            ),
        )

    # --- Work out.

    def stop(self, *, grace_s: float) -> None:
        """Let running executions finish for up to ``grace_s``; the rest are left to run again elsewhere."""
        if not self.loop.is_running():
            return
        future = asyncio.run_coroutine_threadsafe(self._stop(grace_s), self.loop)
        try:
            future.result(grace_s + 10)
        except Exception:
            logger.exception("The engine did not stop cleanly")
        self.heartbeat.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self._db_pool.shutdown(wait=False, cancel_futures=True)

    async def _stop(self, grace_s: float) -> None:
        tasks = [run.task for run in self.runs.values() if run.task is not None]
        if tasks:
            logger.info("Waiting up to %.0fs for %d running executions", grace_s, len(tasks))
            _, pending = await asyncio.wait(tasks, timeout=grace_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)


def _in_connection(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A database call in a pool thread: a usable connection before, handed back (to the pool) after."""
    close_old_connections()
    try:
        return function(*args, **kwargs)
    finally:
        close_old_connections()


def _load_what_runs_need() -> None:
    """Import the LLM SDK and load the tools before the loop takes work, not in the first run.

    On the loop, that first use blocked every run and the heartbeat for seconds on a loaded
    machine (5.5 s measured in a fault test), long enough for a reaper elsewhere to take this
    live engine for dead and run its execution again (worker_lost)."""
    try:
        get_provider()
        load_tools()
    except Exception:  # misconfigured: each run reports it as its own failure
        logger.warning("Could not prepare the LLM provider or the tools", exc_info=True)


_engine: Engine | None = None
_lock = threading.Lock()


def get_engine() -> Engine:
    """This process's engine, started on first use."""
    global _engine
    with _lock:
        if _engine is None or _engine.pid != os.getpid():
            _engine = Engine(capacity=settings.CELERY_WORKER_CONCURRENCY)
        return _engine


def stop_engine(*, grace_s: float) -> None:
    global _engine
    with _lock:
        engine, _engine = _engine, None
    if engine is not None and engine.pid == os.getpid():
        engine.stop(grace_s=grace_s)
