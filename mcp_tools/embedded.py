"""The embedded default: a Celery worker thread inside the server process.

With no ``REDIS_URL`` the broker is Celery's in-memory transport, which only
works inside one process, so the worker lives in the server (daphne) process
as a thread with a small thread pool. Tasks, retries and the event path are
the very same code as in production; only the transports differ.

Started by the ASGI application on its first connection (``ensure_started``),
which also hands the server's event loop to the event publisher: the
in-memory channel layer must only be touched from that loop.
"""
from __future__ import annotations

import asyncio
import logging
import threading

from django.conf import settings

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_worker: threading.Thread | None = None
_reaper_started = False


def ensure_started(loop: asyncio.AbstractEventLoop) -> None:
    from .events import use_server_loop

    use_server_loop(loop)
    if settings.EMBEDDED_WORKER:
        start_worker()


def start_worker(*, concurrency: int | None = None) -> None:
    """Start the in-process worker; later calls do nothing while it is alive
    (a worker thread that died, e.g. on a failed start-up check, is replaced)."""
    global _worker, _reaper_started
    with _lock:
        if _worker is not None and _worker.is_alive():
            return
        _worker = threading.Thread(target=_run_worker, args=(concurrency or settings.CELERY_WORKER_CONCURRENCY,),
                                   name="embedded-celery-worker", daemon=True)
        _worker.start()
        if not _reaper_started:
            from .liveness import start_reaper_thread

            start_reaper_thread()
            _reaper_started = True


def _run_worker(concurrency: int) -> None:
    # Built in its own thread: Celery's Django fixup runs the system checks,
    # which touch the database and must not run on the server's event loop.
    from celery.worker import WorkController

    from config.celery import app

    app.finalize()
    worker = WorkController(
        app=app, pool="threads", concurrency=concurrency, hostname="embedded@localhost",
        without_heartbeat=True, without_mingle=True, without_gossip=True, loglevel=logging.WARNING,
    )
    logger.info("Embedded Celery worker starting (%d threads, in-memory broker)", concurrency)
    worker.start()
