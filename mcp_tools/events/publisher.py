"""The publisher: one execution's events on their way out of a worker, in order.

A run (``mcp_tools/engine/runner.py``) owns one publisher. Text pieces are
coalesced into deltas (``coalesce.py``); every event is numbered by the event
log through the process's outbox (``outbox.py``) and reaches the channel layer
(``dispatch.py``)::

    publisher = ExecutionPublisher(execution_id=..., tool="generate_report", user="ann", epoch=..., attempt=1)
    await publisher.publish(status_event("running", attempt=1))
    publisher.text("Hel"); publisher.text("lo")            # one delta, "Hello"
    await publisher.finish(completed_event(...), on_claimed=write_the_row)

``text`` never waits: the outbox sends the text. The log's answers set what
the run must know: ``ended`` (ended elsewhere: stop), ``lost`` (the live log
is gone: start a new epoch), ``stale`` (a newer attempt runs elsewhere: stop),
``cancel_requested`` (end it as cancelled). A log error is raised by the next
``text`` or ``publish``; the buffered text is kept for the retry.

Terminal events are logged first, then ``on_claimed`` writes the row, and only
then is the event sent: a client that sees ``completed`` finds the row
completed.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable

from ..errors import ExecutionStopped
from .backends import RedisEventLog
from .coalesce import SEND_NOW, Coalescer
from .dispatch import layer_messages, monitor_members, script_channels, send_logged
from .log import Appended, Entry, Refused
from .outbox import Outbox
from .schema import TERMINAL_TYPES, Event, delta_event

logger = logging.getLogger(__name__)

# Publishers of this process that are streaming text: the adaptive coalescing window's load.
_streaming: weakref.WeakSet[ExecutionPublisher] = weakref.WeakSet()

EventListener = Callable[[Event], None]


class LogLost(Exception):
    """The live event log is gone (Redis restarted or flushed): start a new epoch."""


class ExecutionPublisher:
    def __init__(
        self,
        *,
        execution_id: str,
        tool: str,
        user: str,
        epoch: str,
        attempt: int,
        outbox: Outbox,
        coalescer: Coalescer,
        listener: EventListener | None = None,
        on_signal: Callable[[], None] | None = None,
    ) -> None:
        self.execution_id = execution_id
        self.tool = tool
        self.user = user
        self.epoch = epoch
        self.attempt = attempt
        self.outbox = outbox
        self.coalescer = coalescer
        self.listener = listener
        self.on_signal = on_signal
        # Over Redis the log script also publishes each event (dispatch.script_channels).
        self.channels = script_channels() if isinstance(outbox.log, RedisEventLog) else None
        self._members = monitor_members(tool=tool, user=user)
        self.ended = False
        self.stale = False
        self.lost = False
        self.cancel_requested = False
        self._error: BaseException | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()

    # --- Text.

    def text(self, piece: str) -> None:
        """Stream ``piece``; raises if the run must stop or the log failed."""
        self._check()
        if not piece:
            return
        _streaming.add(self)
        due = self.coalescer.add(piece, self._loop.time(), streams=len(_streaming))
        if due == SEND_NOW:
            self._flush_text()
        elif due is not None:
            self._timer = self._loop.call_at(due, self._flush_text)

    def _flush_text(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        text = self.coalescer.take(self._loop.time())
        if not text:
            return
        event = {**delta_event(text), "execution_id": self.execution_id}
        future = self.outbox.put(self._entry(event))
        future.add_done_callback(lambda done: self._text_logged(done, event))

    def _text_logged(self, future: asyncio.Future[Appended], event: Event) -> None:
        if future.cancelled():
            return
        error = future.exception()
        if error is not None:
            self.coalescer.restore(event["text"])
            self._error = error
            return
        self._logged(event, future.result())

    # --- Events.

    async def publish(self, event: Event) -> int | None:
        """Log and send a non-terminal event (buffered text first); its seq, or None if refused."""
        self._check()
        self._flush_text()
        event = {**event, "execution_id": self.execution_id}
        appended = await self.outbox.put(self._entry(event))
        return self._logged(event, appended)

    async def create(self, event: Event) -> int | None:
        """Start a new log (this publisher's epoch) with its first event: after the old one was lost."""
        event = {**event, "execution_id": self.execution_id}
        appended = await self.outbox.log.acreate(self._entry(event))
        return self._logged(event, appended)

    async def finish(self, event: Event, *, on_claimed: Callable[[Event], Awaitable[None]]) -> bool:
        """Log a terminal event, let ``on_claimed`` write the row (given the numbered event), then send it;
        False if the log refused it."""
        _streaming.discard(self)
        self._raise_error()
        self._flush_text()
        event = {**event, "execution_id": self.execution_id}
        appended = await self.outbox.put(self._entry(event))
        if self._logged(event, appended) is None:
            return False
        numbered = {**event, "seq": appended.seq, "epoch": self.epoch}
        try:
            await on_claimed(numbered)
        except Exception:
            # The event is logged and is the truth: tell the followers anyway;
            # the row is repaired from the log (engine/liveness.py).
            logger.exception("Recording the end of %s failed", self.execution_id)
        await self.send(numbered)
        return True

    async def send(self, event: Event) -> None:
        """Send a logged event (with its seq) to the followers."""
        log = self.outbox.log
        if self.channels is not None and isinstance(log, RedisEventLog):
            await log.apublish(self.channels.payloads(event, self._members))
        else:
            send_logged(layer_messages(event, tool=self.tool, user=self.user))

    def close(self) -> None:
        """Drop the timer (the run is over); buffered text is discarded."""
        _streaming.discard(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # --- Bookkeeping.

    def _entry(self, event: Event) -> Entry:
        """The log entry; a non-terminal event is published by the same script.
        A terminal event is sent by ``finish`` once its row is written."""
        publish = None
        if self.channels is not None and event["type"] not in TERMINAL_TYPES:
            publish = self.channels.targets(self.execution_id, event["type"], self._members)
        return Entry(self.execution_id, event, self.epoch, self.attempt, publish)

    def _logged(self, event: Event, appended: Appended) -> int | None:
        signal = appended.cancel_requested and not self.cancel_requested
        self.cancel_requested = self.cancel_requested or appended.cancel_requested
        if appended.seq is None:
            self.ended = self.ended or appended.refused == Refused.ENDED
            self.stale = self.stale or appended.refused == Refused.STALE
            self.lost = self.lost or appended.refused == Refused.LOST
            signal = True
        if signal and self.on_signal is not None:
            self.on_signal()
        if appended.seq is None:
            return None
        numbered = {**event, "seq": appended.seq, "epoch": self.epoch}
        if self.listener is not None:
            self.listener(numbered)
        if self.channels is None and event["type"] not in TERMINAL_TYPES:
            send_logged(layer_messages(numbered, tool=self.tool, user=self.user))
        return appended.seq

    def _check(self) -> None:
        self._raise_error()
        if self.lost:
            raise LogLost(f"The event log of {self.execution_id} was lost.")
        if self.ended or self.stale:
            raise ExecutionStopped()

    def _raise_error(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise error
