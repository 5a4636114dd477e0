"""The outbox: every append of one process's runs, batched per turn of its event loop.

Publishers put entries here; whatever arrived while the previous batch was
in flight leaves together, in one Redis round trip (one pipeline of EVALSHA),
and each entry's future gets its ``Appended``. Only one batch is in flight at
a time, so entries leave in the order they came — a run's buffered text
always before its next event. Under load batches grow by themselves::

    appended = await outbox.put(Entry(execution_id, event, epoch, attempt))
"""

from __future__ import annotations

import asyncio
import logging

from .. import metrics
from .backends import EventLog
from .log import Appended, Entry

logger = logging.getLogger(__name__)


class Outbox:
    def __init__(self, log: EventLog) -> None:
        self.log = log
        self._pending: list[tuple[Entry, asyncio.Future[Appended]]] = []
        self._flusher: asyncio.Task | None = None

    def put(self, entry: Entry) -> asyncio.Future[Appended]:
        """Queue ``entry``; the future resolves once it was appended (or raises the log's error)."""
        future: asyncio.Future[Appended] = asyncio.get_running_loop().create_future()
        self._pending.append((entry, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush(), name="event-outbox")
        return future

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            started = metrics.now()
            try:
                results = await self.log.aappend_many([entry for entry, _ in batch])
            except Exception as exc:
                # Nothing is known to be logged: every waiter gets the error.
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            metrics.log_appended(started)
            for (_, future), appended in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(appended)
