"""The embedded default: a Celery worker inside the server process.

With no ``REDIS_URL`` the broker is Celery's in-memory transport, which only
works inside one process, so the worker lives in the server (daphne)
process, as a thread running the same pool and engine as a production
worker (``engine/pool.py``). Tasks, fair share, retries and the event path
are the very same code as in production; only the transports differ.

Started by the ASGI application on its first connection (``ensure_started``).
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_worker: threading.Thread | None = None


def ensure_started() -> None:
    if settings.EMBEDDED_WORKER:
        start_worker()


def start_worker(*, concurrency: int | None = None) -> None:
    """Start the in-process worker; later calls do nothing while it is alive
    (a worker thread that died, e.g. on a failed start-up check, is replaced)."""
    global _worker
    with _lock:
        if _worker is not None and _worker.is_alive():
            return
        _worker = threading.Thread(
            target=_run_worker,
            args=(concurrency or settings.CELERY_WORKER_CONCURRENCY,),
            name="embedded-celery-worker",
            daemon=True,
        )
        _worker.start()


def _run_worker(concurrency: int) -> None:
    # Built in its own thread: Celery's Django fixup runs the system checks,
    # which touch the database and must not run on the server's event loop.
    from celery.worker import WorkController

    from config.celery import app

    app.finalize()
    worker = WorkController(
        app=app,
        pool=settings.CELERY_WORKER_POOL,
        concurrency=concurrency,
        hostname="embedded@localhost",
        without_heartbeat=True,
        without_mingle=True,
        without_gossip=True,
        loglevel=logging.WARNING,
    )
    logger.info("Embedded Celery worker starting (%d executions at once, in-memory broker)", concurrency)
    worker.start()
