"""Event shapes, group names and the publisher: generation, not delivery.

Nothing else in the project spells a group name or builds an execution event.
An ``ExecutionPublisher`` belongs to one run of one execution; it coalesces
text pieces into deltas, numbers every event through the event log
(``eventlog.py``) and hands it to the channel layer::

    publisher = ExecutionPublisher(execution_id=..., tool="generate_report", user="ann")
    publisher.status("running", attempt=1)
    publisher.text("Hel"); publisher.text("lo")      # one delta, "Hello"
    publisher.finish(completed_event(result, duration_ms=12, cached=False))

Delivery (``consumers/``) is the consumers' job. Group sends leave through a
``Dispatcher``: one event loop per process and one ordered queue, instead of
``async_to_sync`` per message, which costs a new loop and connection each time
(PITFALLS.md). In the embedded default the loop is the server's own, since the
in-memory channel layer must only be touched from its loop.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings

from .eventlog import TERMINAL_TYPES, Event, get_event_log

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

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> None:
        """Run ``callback`` in a flusher thread after ``delay_s``: never on the loop itself,
        which must not wait on the event log's synchronous Redis round trip."""
        self._ready.wait()
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.loop.call_later, delay_s, _flusher_pool().submit, callback)

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
# Threads that send coalesced text whose window closed with no newer piece to
# carry it; (pid, pool), rebuilt in a forked child.
FLUSHER_THREADS = 4
_flushers: tuple[int, concurrent.futures.ThreadPoolExecutor] | None = None
# Publishers of this process that are streaming text: the adaptive window's load.
_streaming: weakref.WeakSet = weakref.WeakSet()


def _flusher_pool() -> concurrent.futures.ThreadPoolExecutor:
    global _flushers
    with _dispatcher_lock:
        if _flushers is None or _flushers[0] != os.getpid():
            _flushers = (os.getpid(), concurrent.futures.ThreadPoolExecutor(
                max_workers=FLUSHER_THREADS, thread_name_prefix="delta-flusher"))
        return _flushers[1]


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
    """

    def __init__(self, *, execution_id: str, tool: str, user: str) -> None:
        self.execution_id = execution_id
        self.tool = tool
        self.user = user
        self.log = get_event_log()
        self.dispatcher = get_dispatcher()
        self.listener = _listener.get()
        self.ended = False
        self._lock = threading.Lock()
        self._buffer: list[str] = []
        self._buffered_bytes = 0
        self._timer_armed = False
        self._last_delta_at = float("-inf")
        self._window_s = settings.MCP_CONFIG["COALESCE_MS"] / 1000
        self._max_bytes = settings.MCP_CONFIG["COALESCE_BYTES"]
        self._deltas_per_s = settings.MCP_CONFIG.get("COALESCE_DELTAS_PER_S", 0)

    def publish(self, event: Event) -> int | None:
        """Append one event to the log and send it; returns its seq, or None if ended."""
        with self._lock:
            self._flush_locked()
            return self._publish_locked(event)

    def status(self, status: str, **extra: Any) -> int | None:
        return self.publish(status_event(status, **extra))

    def text(self, piece: str) -> bool:
        """Buffer a piece of streamed text; False once the execution has ended."""
        if not piece:
            return not self.ended
        _streaming.add(self)
        with self._lock:
            self._buffer.append(piece)
            self._buffered_bytes += len(piece.encode())
            wait_s = self._last_delta_at + self.window_s() - time.monotonic()
            if wait_s <= 0 or self._buffered_bytes >= self._max_bytes:
                self._flush_locked()
            elif not self._timer_armed:
                self._timer_armed = True
                self.dispatcher.call_later(wait_s, self._on_timer)
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
        with self._lock:
            self._flush_locked()
            seq = self._publish_locked(event, on_logged=on_claimed)
        self.dispatcher.flush()
        return seq is not None

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    def _on_timer(self) -> None:
        with self._lock:
            self._timer_armed = False
            self._flush_locked()

    def _flush_locked(self) -> None:
        if not self._buffer:
            return
        text = "".join(self._buffer)
        self._last_delta_at = time.monotonic()
        self._publish_locked(delta_event(text))  # if the log is unreachable this raises and the text stays
        self._buffer.clear()
        self._buffered_bytes = 0

    def _publish_locked(self, event: Event, *, on_logged: Callable[[], None] | None = None) -> int | None:
        if self.ended:
            return None
        event = {**event, "execution_id": self.execution_id}
        seq = self.log.append(self.execution_id, event)
        if seq is None:
            self.ended = True
            return None
        if on_logged is not None:
            try:
                on_logged()
            except Exception:
                # The event is the truth and is logged: tell the clients anyway.
                # The reaper repairs the row from the log (liveness.py).
                logger.exception("Recording the end of %s failed", self.execution_id)
        event["seq"] = seq
        if self.listener is not None:
            self.listener(event)
        self.dispatcher.send(execution_group(self.execution_id), {"type": "execution.event", "event": event})
        if event["type"] in MONITOR_TYPES:
            monitor_event = {**event, "tool": self.tool, "user": self.user}
            self.dispatcher.send(MONITOR_GROUP, {"type": "monitor.event", "event": monitor_event})
        return seq

