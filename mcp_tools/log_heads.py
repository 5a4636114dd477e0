"""The idle poll's question for the whole process at once: how far has each log got?

Every WebSocket connection's idle poll (``delivery.Subscriptions.poll``) wakes
on the same clock tick (``delivery.until_next_poll``), so the quiet cursors of
all connections ask in the same turn of the event loop. Their questions leave
together, as one pipeline to the event log (``EventLog.aheads``: each log's
epoch and last seq), and only a cursor whose log moved on, started again or is
gone then reads it in full. A thousand waiting connections cost one round trip
per tick instead of a thousand reads::

    heads = await ask([cursor.execution_id for cursor in quiet])   # {execution_id: Head}

One batch in flight at a time per event loop; what is asked meanwhile leaves
with the next. If the log cannot be reached, every asker gets the error.
"""

from __future__ import annotations

import asyncio
import weakref

from .events import Head, get_event_log


class HeadBatch:
    """One event loop's questions, sent as one pipeline per turn."""

    def __init__(self) -> None:
        self._pending: list[tuple[list[str], asyncio.Future[dict[str, Head]]]] = []
        self._flusher: asyncio.Task | None = None

    def ask(self, execution_ids: list[str]) -> asyncio.Future[dict[str, Head]]:
        future: asyncio.Future[dict[str, Head]] = asyncio.get_running_loop().create_future()
        self._pending.append((execution_ids, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush(), name="log-heads")
        return future

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            wanted = list(dict.fromkeys(e for execution_ids, _ in batch for e in execution_ids))
            try:
                heads = await get_event_log().aheads(wanted)
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for execution_ids, future in batch:
                if not future.done():
                    future.set_result({e: heads[e] for e in execution_ids})


_batches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, HeadBatch] = weakref.WeakKeyDictionary()


async def ask(execution_ids: list[str]) -> dict[str, Head]:
    """How far each execution's log has got, asked together with every other asker of this turn."""
    loop = asyncio.get_running_loop()
    batch = _batches.get(loop)
    if batch is None:
        batch = _batches[loop] = HeadBatch()
    return await batch.ask(execution_ids)
