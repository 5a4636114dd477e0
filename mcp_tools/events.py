"""Event shapes, group names and the publisher: generation, not delivery.

Nothing else in the project spells a group name or builds an execution event.
An ``ExecutionPublisher`` belongs to one run of one execution; it coalesces
text pieces into deltas, numbers every event through the event log
(``eventlog.py``) and hands it to the channel layer::

    publisher = ExecutionPublisher(execution_id=..., tool="generate_report", user="ann")
    publisher.status("running", attempt=1)
    publisher.text("Hel"); publisher.text("lo")      # one delta, "Hello"
    publisher.finish(completed_event(result, duration_ms=12, cached=False))

Delivery (``consumers/``) is the consumers' job. Events leave a process
through its ``Outbox``: one thread that appends whatever is ready to the event
log in one round trip. With Redis and the pub/sub channel layer, each append
is a Lua script that also PUBLISHes the numbered event to its group's
channel, so numbering and sending are one step and a streaming thread never
waits on Redis (docs/benchmarks.md). Otherwise (the embedded default's
in-memory layer, or ``RedisChannelLayer``) the outbox hands each logged event
to a ``Dispatcher``: one event loop per process and one ordered queue, instead
of ``async_to_sync`` per message, which costs a new loop and connection each
time (PITFALLS.md). In the embedded default that loop is the server's own,
since the in-memory channel layer must only be touched from its loop.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import heapq
import itertools
import json
import logging
import os
import threading
import time
import weakref
from dataclasses import dataclass
from collections.abc import Callable
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings

from .eventlog import TERMINAL_TYPES, Event, LayerChannels, get_event_log

logger = logging.getLogger(__name__)

MONITOR_GROUP = "monitor"
# Sent to the monitor group: status changes and terminal events, never deltas.
MONITOR_TYPES = frozenset({"execution.status"}) | TERMINAL_TYPES


def execution_group(execution_id: str) -> str:
    return f"execution.{execution_id}"


# --- Event constructors (PROTOCOL.md "Server -> client").

def status_event(status: str, **extra: Any) -> Event:
    return {"type": "execution.status", "status": status, **extra}


def delta_event(text: str) -> Event:
    return {"type": "execution.delta", "text": text}


def completed_event(result: dict, *, duration_ms: int, cached: bool) -> Event:
    return {"type": "execution.completed", "status": "completed", "result": result,
            "duration_ms": duration_ms, "cached": cached}


def failed_event(code: str, message: str, *, duration_ms: int) -> Event:
    return {"type": "execution.failed", "status": "failed",
            "error": {"code": code, "message": message}, "duration_ms": duration_ms}


def cancelled_event(*, duration_ms: int) -> Event:
    return {"type": "execution.cancelled", "status": "cancelled", "duration_ms": duration_ms}


# --- Delivery to the channel layer.

class Dispatcher:
    """Sends group messages in order from one event loop.

    Thread-safe: ``send`` may be called from any thread. ``flush`` blocks the
    caller until everything sent before it has left.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.pid = os.getpid()
        self.queue: asyncio.Queue | None = None
        self._ready = threading.Event()
        loop.call_soon_threadsafe(self._start)

    def _start(self) -> None:
        self.queue = asyncio.Queue()
        self.loop.create_task(self._drain())
        self._ready.set()

    async def _drain(self) -> None:
        layer = get_channel_layer()
        while True:
            item = await self.queue.get()
            if isinstance(item, concurrent.futures.Future):
                item.set_result(None)
                continue
            group, message = item
            try:
                await layer.group_send(group, message)
            except Exception:
                # The event is in the log; a subscriber fills the gap from there.
                logger.exception("group_send to %s failed", group)

    def send(self, group: str, message: dict) -> None:
        self._ready.wait()
        if self.loop.is_closed():
            return  # the server is shutting down; the event is in the log
        self.loop.call_soon_threadsafe(self.queue.put_nowait, (group, message))

    def flush(self, timeout_s: float = 10.0) -> None:
        if _on_loop(self.loop) or not self.loop.is_running():
            return  # cannot block the loop on itself; a stopped loop sends nothing more
        self._ready.wait()
        done: concurrent.futures.Future = concurrent.futures.Future()
        self.loop.call_soon_threadsafe(self.queue.put_nowait, done)
        try:
            done.result(timeout_s)
        except concurrent.futures.TimeoutError:
            logger.warning("channel layer did not drain within %.1fs", timeout_s)


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


# In-process observers of published events (``run_tool --stream``), per thread of control.
_listener: contextvars.ContextVar[Callable[[Event], None] | None] = contextvars.ContextVar("listener", default=None)


@contextlib.contextmanager
def listening(callback: Callable[[Event], None] | None):
    """Call ``callback`` with every event published in this context."""
    token = _listener.set(callback)
    try:
        yield
    finally:
        _listener.reset(token)


_dispatcher: Dispatcher | None = None
_dispatcher_lock = threading.Lock()
# Publishers of this process that are streaming text: the adaptive window's load.
_streaming: weakref.WeakSet = weakref.WeakSet()


def use_server_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Called by the ASGI application: publish from the server's own loop."""
    global _dispatcher
    with _dispatcher_lock:
        if _dispatcher is None or _dispatcher.loop is not loop:
            _dispatcher = Dispatcher(loop)


def get_dispatcher() -> Dispatcher:
    """The process's dispatcher; a worker process gets a loop thread of its own."""
    global _dispatcher
    with _dispatcher_lock:
        # A forked worker child inherits the parent's object but not its thread.
        if _dispatcher is None or _dispatcher.loop.is_closed() or _dispatcher.pid != os.getpid():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="event-dispatcher", daemon=True).start()
            _dispatcher = Dispatcher(loop)
        return _dispatcher


def layer_channels() -> LayerChannels | None:
    """How the event log can publish to channel-layer groups itself, or None.

    Only for ``RedisPubSubChannelLayer`` with the JSON serializer on the event
    log's own Redis server: a group is then one pub/sub channel named
    ``<prefix>__group__<group>`` (``RedisPubSubLoopLayer._get_group_channel_name``;
    tests/mcp_tools/test_outbox.py checks it against the installed
    channels_redis, and that a real layer receives what the script publishes).
    """
    layer = settings.CHANNEL_LAYERS["default"]
    config = layer.get("CONFIG", {})
    hosts = config.get("hosts", [])
    if (layer["BACKEND"] != "channels_redis.pubsub.RedisPubSubChannelLayer"
            or config.get("serializer_format") != "json" or config.get("symmetric_encryption_keys")
            or len(hosts) != 1 or not settings.EVENT_LOG_URL):
        return None
    address = hosts[0]["address"] if isinstance(hosts[0], dict) else hosts[0]
    if address != settings.EVENT_LOG_URL:
        return None
    prefix = f"{config.get('prefix', 'asgi')}__group__"
    return LayerChannels(execution_prefix=f"{prefix}{execution_group('')}", monitor=f"{prefix}{MONITOR_GROUP}")


@dataclass
class _Item:
    """One thing for the outbox: a publisher's buffered text (``event`` None) and,
    optionally, an event after it, whose seq goes to ``future``."""
    publisher: ExecutionPublisher
    event: Event | None = None
    send: bool = True  # False: log only (terminal events are sent by ``finish``)
    future: concurrent.futures.Future | None = None


class Outbox:
    """One thread per process through which every event is logged and sent.

    Publishers put items (and timers for their coalescing windows) here; the
    thread takes everything ready, appends it to the event log in one batch
    (one Redis round trip) and tells each publisher its seq. Order is kept:
    items leave in the order they came, and a publisher's buffered text always
    leaves before its next event. Under load, batches grow by themselves.
    """

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.log = get_event_log()
        self.channels = layer_channels() if getattr(self.log, "can_publish", False) else None
        self._cond = threading.Condition()
        self._queue: list[_Item] = []
        self._timers: list[tuple[float, int, ExecutionPublisher]] = []
        self._order = itertools.count()
        threading.Thread(target=self._run, name="event-outbox", daemon=True).start()

    def put(self, item: _Item) -> None:
        with self._cond:
            self._queue.append(item)
            self._cond.notify()

    def put_at(self, when: float, publisher: ExecutionPublisher) -> None:
        """Send ``publisher``'s buffered text at ``when`` (``time.monotonic``)."""
        with self._cond:
            heapq.heappush(self._timers, (when, next(self._order), publisher))
            if self._timers[0][2] is publisher:
                self._cond.notify()

    def _take(self) -> list[_Item]:
        with self._cond:
            while True:
                now = time.monotonic()
                while self._timers and self._timers[0][0] <= now:
                    publisher = heapq.heappop(self._timers)[2]
                    publisher._timer_armed = False
                    self._queue.append(_Item(publisher))
                if self._queue:
                    items, self._queue = self._queue, []
                    return items
                self._cond.wait(self._timers[0][0] - now if self._timers else None)

    def _run(self) -> None:
        while True:
            items = self._take()
            try:
                self._send(items)
            except BaseException as exc:  # never let the thread die: fail the items instead
                logger.exception("The event outbox failed a batch")
                for item in items:
                    if item.future is not None and not item.future.done():
                        item.future.set_exception(exc)
            finally:
                for item in items:
                    item.publisher._item_done()

    def append_now(self, publisher: ExecutionPublisher, event: Event, send: bool) -> int | None:
        """Log (and send) one event from the calling thread: for a publisher with
        nothing in the outbox, so order holds without the hand-off to this thread."""
        seq = self._append([(None, publisher, event, send)])[0]
        publisher._logged(event, seq, sent=send and self.channels is not None, send=send)
        return seq

    def _send(self, items: list[_Item]) -> None:
        batch: list[tuple[_Item | None, ExecutionPublisher, Event, bool]] = []
        for item in items:
            text = item.publisher._take_text()
            if text:
                batch.append((None, item.publisher, {**delta_event(text), "execution_id": item.publisher.execution_id},
                              True))
            if item.event is not None:
                batch.append((item, item.publisher, item.event, item.send))
        if batch:
            self._log_and_send(batch)

    def _log_and_send(self, batch) -> None:
        try:
            seqs = self._append(batch)
        except Exception as exc:
            # Nothing is known to be logged: the text goes back to its buffer (the
            # streaming thread sees the error on its next piece) and waiters get it.
            for item, publisher, event, _ in reversed(batch):
                if item is None:
                    publisher._restore_text(event["text"], exc)
                elif item.future is not None:
                    item.future.set_exception(exc)
            return
        for (item, publisher, event, send), seq in zip(batch, seqs):
            publisher._logged(event, seq, sent=send and self.channels is not None, send=send)
            if item is not None and item.future is not None:
                item.future.set_result(seq)

    def _append(self, batch) -> list[int | None]:
        entries = [(publisher.execution_id, event) for _, publisher, event, _ in batch]
        if self.channels is None:
            return self.log.append_batch(entries)
        # What the log script publishes with each append: the group, plus the monitor's fields for its events.
        publish = [(publisher.monitor_fields if event["type"] in MONITOR_TYPES else "") if send else None
                   for _, publisher, event, send in batch]
        return self.log.append_batch(entries, publish=publish, channels=self.channels)


_outbox: Outbox | None = None


def get_outbox() -> Outbox:
    global _outbox
    with _dispatcher_lock:
        if _outbox is None or _outbox.pid != os.getpid():  # a forked child needs its own thread
            _outbox = Outbox()
        return _outbox


class ExecutionPublisher:
    """Numbers, logs and sends the events of one execution run.

    ``text`` coalesces pieces, at most one delta per *window*: a piece that
    arrives a window or more after the last delta leaves at once (a stream
    slower than the window adds no delay), faster pieces wait for the window
    to close or for ``COALESCE_BYTES``, whichever comes first. The window is
    ``COALESCE_MS``, widened when this process streams more executions than
    ``COALESCE_DELTAS_PER_S`` allows (500 streams and a budget of 500/s:
    one second), so the channel layer and the servers carry a bounded number of
    messages whatever the load (docs/benchmarks.md). ``ended`` turns true once
    the log refuses an append, i.e. the execution was ended elsewhere
    (cancelled) and the run should stop.

    A buffer that reached ``COALESCE_BYTES`` is queued at once; text that
    arrives before the outbox takes it rides along, so under load a delta can
    be larger (backpressure batching, never a wait).

    ``text`` never waits for Redis: the outbox sends the text. If the event log
    was unreachable, the text stays buffered and the next ``text`` (or
    ``publish``) raises the error, so the run can wait and start again.
    """

    def __init__(self, *, execution_id: str, tool: str, user: str) -> None:
        self.execution_id = execution_id
        self.tool = tool
        self.user = user
        self.log = get_event_log()
        self.outbox = get_outbox()
        self.listener = _listener.get()
        # The fields a monitor event adds to an execution event, as JSON members.
        self.monitor_fields = "," + json.dumps({"tool": tool, "user": user}, separators=(",", ":"))[1:-1]
        self.ended = False
        self._error: Exception | None = None
        self._lock = threading.Lock()
        self._buffer: list[str] = []
        self._buffered_bytes = 0
        self._timer_armed = False
        self._flush_queued = False  # an item that will take the buffer is in the outbox
        self._outstanding = 0  # items of this publisher in the outbox, not yet done
        self._last_delta_at = float("-inf")
        self._window_s = settings.MCP_CONFIG["COALESCE_MS"] / 1000
        self._max_bytes = settings.MCP_CONFIG["COALESCE_BYTES"]
        self._deltas_per_s = settings.MCP_CONFIG.get("COALESCE_DELTAS_PER_S", 0)

    def publish(self, event: Event) -> int | None:
        """Log and send one event (after any buffered text); its seq, or None if ended."""
        return self._submit(event, send=True)

    def status(self, status: str, **extra: Any) -> int | None:
        return self.publish(status_event(status, **extra))

    def text(self, piece: str) -> bool:
        """Buffer a piece of streamed text; False once the execution has ended."""
        self._raise_error()
        if not piece:
            return not self.ended
        _streaming.add(self)
        due, timer_at = False, None
        with self._lock:
            self._buffer.append(piece)
            self._buffered_bytes += len(piece.encode())
            if self._flush_queued:
                pass  # this piece leaves with the text already on its way out
            elif self._buffered_bytes >= self._max_bytes:
                due = True
            elif not self._timer_armed:  # (an armed timer takes this piece along when it fires)
                wait_s = self._last_delta_at + self.window_s() - time.monotonic()
                if wait_s <= 0:
                    due = True
                else:
                    self._timer_armed = True
                    timer_at = time.monotonic() + wait_s
            if due or timer_at is not None:
                self._outstanding += 1
                self._flush_queued = due
        if due:
            self.outbox.put(_Item(self))
        elif timer_at is not None:
            self.outbox.put_at(timer_at, self)
        return not self.ended

    def window_s(self) -> float:
        """The coalescing window now: COALESCE_MS, or wider under this process's load."""
        if not self._deltas_per_s:
            return self._window_s
        return max(self._window_s, len(_streaming) / self._deltas_per_s)

    def finish(self, event: Event, *, on_claimed: Callable[[], None] | None = None) -> bool:
        """Publish a terminal event; False if another party ended it first.

        ``on_claimed`` runs after the log accepted the event and before anyone
        is told, so a client that sees the terminal event finds the row final.
        """
        _streaming.discard(self)
        seq = self._submit(event, send=False)
        if seq is None:
            return False
        if on_claimed is not None:
            try:
                on_claimed()
            except Exception:
                # The event is the truth and is logged: tell the clients anyway.
                # The reaper repairs the row from the log (liveness.py).
                logger.exception("Recording the end of %s failed", self.execution_id)
        self._send({**event, "execution_id": self.execution_id, "seq": seq})
        if self.outbox.channels is None:
            get_dispatcher().flush()
        return True

    def _submit(self, event: Event, *, send: bool) -> int | None:
        self._raise_error()
        if self.ended:
            return None
        event = {**event, "execution_id": self.execution_id}
        with self._lock:
            if not self._outstanding and not self._buffer:
                # Nothing of this run is in the outbox: log it here. Under load a
                # hand-off to the outbox thread and back waits for the GIL twice
                # (milliseconds on the execute path, bench/).
                return self.outbox.append_now(self, event, send)
            self._outstanding += 1
        future: concurrent.futures.Future = concurrent.futures.Future()
        self.outbox.put(_Item(self, event, send=send, future=future))
        return future.result()

    def _raise_error(self) -> None:
        with self._lock:
            error, self._error = self._error, None
        if error is not None:
            raise error

    # --- Called by the outbox thread.

    def _item_done(self) -> None:
        with self._lock:
            self._outstanding -= 1

    def _take_text(self) -> str:
        with self._lock:
            self._flush_queued = False
            if not self._buffer:
                return ""
            text = "".join(self._buffer)
            self._buffer.clear()
            self._buffered_bytes = 0
            self._last_delta_at = time.monotonic()
            return text

    def _restore_text(self, text: str, error: Exception) -> None:
        with self._lock:
            self._buffer.insert(0, text)
            self._buffered_bytes += len(text.encode())
            self._error = error

    def _logged(self, event: Event, seq: int | None, *, sent: bool, send: bool) -> None:
        """The log gave ``event`` its ``seq`` (None: refused, the execution has ended)."""
        if seq is None:
            self.ended = True
            return
        event = {**event, "execution_id": self.execution_id, "seq": seq}
        if self.listener is not None:
            self.listener(event)
        if send and not sent:
            self._send(event)

    def _send(self, event: Event) -> None:
        """Send a logged event to its group (and the monitor's) through the channel layer."""
        channels = self.outbox.channels
        monitor = event["type"] in MONITOR_TYPES
        if channels is not None:
            self.log.publish(channels, event, monitor_fields=self.monitor_fields if monitor else "")
            return
        dispatcher = get_dispatcher()
        dispatcher.send(execution_group(self.execution_id), {"type": "execution.event", "event": event})
        if monitor:
            dispatcher.send(MONITOR_GROUP, {"type": "monitor.event",
                                            "event": {**event, "tool": self.tool, "user": self.user}})
