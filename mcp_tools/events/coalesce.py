"""Coalescing text pieces into deltas: at most one delta per window.

A piece that arrives a window or more after the last delta leaves at once (a
stream slower than the window is not delayed at all); faster pieces wait for
the window to close, or for ``max_bytes`` to be buffered, whichever comes
first. The window is ``window_s``, widened when this process streams more
executions than ``deltas_per_s`` allows (500 streams on a budget of 500/s:
one second), so the channel layer and the servers carry a bounded number of
messages whatever the load. Pure bookkeeping: the publisher owns the clock
and the timer::

    decision = coalescer.add("Hel", now)   # SEND_NOW, or a time to send at, or None (a timer is armed)
    text = coalescer.take(now)             # the buffered text, as one delta
"""

from __future__ import annotations

SEND_NOW = -1.0


class Coalescer:
    def __init__(self, *, window_s: float, max_bytes: int, deltas_per_s: int) -> None:
        self.window_s = window_s
        self.max_bytes = max_bytes
        self.deltas_per_s = deltas_per_s
        self._buffer: list[str] = []
        self._bytes = 0
        self._last_delta_at = float("-inf")
        self._timer_armed = False

    def add(self, piece: str, now: float, *, streams: int) -> float | None:
        """Buffer ``piece``; say when the buffer should leave: SEND_NOW, at a time, or None (already planned)."""
        self._buffer.append(piece)
        self._bytes += len(piece.encode())
        if self._bytes >= self.max_bytes:
            return SEND_NOW
        if self._timer_armed:
            return None
        due = self._last_delta_at + self.current_window(streams)
        if due <= now:
            return SEND_NOW
        self._timer_armed = True
        return due

    def current_window(self, streams: int) -> float:
        if not self.deltas_per_s:
            return self.window_s
        return max(self.window_s, streams / self.deltas_per_s)

    def take(self, now: float) -> str:
        """The buffered text (empty if none); the window starts again from ``now``."""
        self._timer_armed = False
        if not self._buffer:
            return ""
        text = "".join(self._buffer)
        self._buffer.clear()
        self._bytes = 0
        self._last_delta_at = now
        return text

    def restore(self, text: str) -> None:
        """Put back text that could not be logged (the log was unreachable)."""
        self._buffer.insert(0, text)
        self._bytes += len(text.encode())

    @property
    def empty(self) -> bool:
        return not self._buffer
