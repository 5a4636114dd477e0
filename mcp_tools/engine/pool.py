"""The Celery pool that hands tasks to the engine: many executions per worker process.

Why a pool of our own (docs/design.md, "The engine"): Celery's prefork,
threads and solo pools hold a process or a thread for as long as a task runs,
and an execution is a stream of minutes that is almost all waiting. Here a
task message is applied the way the solo pool applies it — its tracer runs
at once in the consumer's thread — but the task body only hands the work to
the engine's event loop and returns a future (``defer_until_done``). The
pool then calls Celery's completion callback, which acknowledges the message
(late acks), when that future is done, on the consumer's own thread (through
kombu's hub). So Celery keeps what it guarantees — a message is acknowledged
only after its execution ended, at most ``worker_concurrency`` unacknowledged
messages per worker (``worker_prefetch_multiplier`` = 1), a warm shutdown
waits — while one process holds ``worker_concurrency`` executions at once.

Selected in settings (``CELERY_WORKER_POOL``), so the bare
``celery -A config worker`` runs it; a task run in any other pool simply
waits for its execution in its own process or thread.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import threading
from typing import Any

from celery.concurrency.base import BasePool, apply_target
from django.conf import settings

logger = logging.getLogger(__name__)

_deferral = threading.local()


def defer_until_done(future: concurrent.futures.Future) -> None:
    """Called by a task body: finish the task when ``future`` is done.

    In the ``ExecutionPool`` the task returns at once and its message is
    acknowledged later; in any other pool this waits here."""
    slot = getattr(_deferral, "slot", None)
    if slot is None:
        future.result()
    else:
        slot.append(future)


class ExecutionPool(BasePool):
    body_can_be_buffer = True
    signal_safe = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._hub = None
        self._active: set[concurrent.futures.Future] = set()
        self._lock = threading.Lock()

    def on_start(self) -> None:
        from .loop import get_engine

        get_engine()  # the loop thread, the heartbeat, the reaper: before the first message

    def register_with_event_loop(self, hub) -> None:
        """Celery gives the pool its consumer's loop: completions are handed to it."""
        self._hub = hub

    def on_apply(self, target, args=None, kwargs=None, callback=None, accept_callback=None, **_: Any):
        deferred: list[concurrent.futures.Future] = []
        returned: list[Any] = []
        _deferral.slot = deferred
        try:
            apply_target(target, args or (), kwargs, returned.append, accept_callback, pid=os.getpid())
        finally:
            _deferral.slot = None
        if not deferred:
            if returned and callback is not None:
                callback(returned[0])
            return None
        future = deferred[0]
        with self._lock:
            self._active.add(future)
        future.add_done_callback(lambda done: self._finished(done, callback, returned))
        return None

    def _finished(self, future: concurrent.futures.Future, callback, returned: list[Any]) -> None:
        with self._lock:
            self._active.discard(future)
        if not future.cancelled() and future.exception() is not None:
            logger.error("An execution ended with an error in the engine", exc_info=future.exception())
        if callback is None or not returned:
            return
        if self._hub is not None:
            self._hub.call_soon(callback, returned[0])
        else:
            callback(returned[0])

    def on_stop(self) -> None:
        """Warm shutdown: running executions get ENGINE_SHUTDOWN_GRACE_S to finish; the rest run again elsewhere."""
        from .loop import stop_engine

        stop_engine(grace_s=settings.MCP_CONFIG["ENGINE_SHUTDOWN_GRACE_S"])

    def on_terminate(self) -> None:
        from .loop import stop_engine

        stop_engine(grace_s=0)

    def _get_info(self) -> dict[str, Any]:
        info = super()._get_info()
        with self._lock:
            info["running"] = len(self._active)
        return info

    @property
    def num_processes(self) -> int:
        return 1
