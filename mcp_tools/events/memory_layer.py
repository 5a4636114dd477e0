"""The embedded default's channel layer: one process, any thread, any event loop.

Channels' ``InMemoryChannelLayer`` keeps asyncio queues that only the loop
awaiting them may touch (a message put from another thread wakes nobody, see
docs/design.md); in the embedded default the worker engine's loop and request
threads send too. Here each receiving channel remembers the loop that waits
on it, and a message from anywhere else is handed over with
``call_soon_threadsafe``::

    CHANNEL_LAYERS = {"default": {"BACKEND": "mcp_tools.events.memory_layer.MemoryChannelLayer"}}
    layer.group_send_threadsafe("execution.<id>", message)      # from a plain thread

Like the in-memory layer, it drops messages for a channel holding
``capacity`` unread ones; followers fill such gaps from the event log.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import string
import threading
from typing import Any

from channels.layers import BaseChannelLayer

logger = logging.getLogger(__name__)


class _Inbox:
    __slots__ = ("loop", "queue", "backlog")

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.queue: asyncio.Queue | None = None
        self.backlog: collections.deque = collections.deque()


class MemoryChannelLayer(BaseChannelLayer):
    extensions = ["groups", "flush"]

    def __init__(self, expiry: int = 60, capacity: int = 10_000, **kwargs: Any) -> None:
        super().__init__(expiry=expiry, capacity=capacity, **kwargs)
        self._lock = threading.Lock()
        self._inboxes: dict[str, _Inbox] = {}
        self._groups: dict[str, set[str]] = {}

    # --- Thread-safe sending.

    def send_threadsafe(self, channel: str, message: dict) -> None:
        with self._lock:
            inbox = self._inboxes.setdefault(channel, _Inbox())
            if inbox.queue is None or inbox.loop is None:
                if len(inbox.backlog) < self.capacity:
                    inbox.backlog.append(message)
                return
            queue, loop = inbox.queue, inbox.loop
        if queue.qsize() >= self.capacity:
            return  # a follower this far behind fills the gap from the log
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            queue.put_nowait(message)
        else:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, message)
            except RuntimeError:  # the receiver's loop has closed
                pass

    def group_send_threadsafe(self, group: str, message: dict) -> None:
        with self._lock:
            channels = list(self._groups.get(group, ()))
        for channel in channels:
            self.send_threadsafe(channel, message)

    # --- The channel layer API.

    async def send(self, channel: str, message: dict) -> None:
        self.require_valid_channel_name(channel)
        self.send_threadsafe(channel, message)

    async def receive(self, channel: str) -> dict:
        self.require_valid_channel_name(channel)
        loop = asyncio.get_running_loop()
        with self._lock:
            inbox = self._inboxes.setdefault(channel, _Inbox())
            if inbox.queue is None or inbox.loop is not loop:
                inbox.loop, inbox.queue = loop, asyncio.Queue()
                while inbox.backlog:
                    inbox.queue.put_nowait(inbox.backlog.popleft())
            queue = inbox.queue
        try:
            return await queue.get()
        finally:
            with self._lock:  # an emptied inbox goes (a receiver that comes back makes a new one)
                if queue.empty() and self._inboxes.get(channel) is inbox:
                    del self._inboxes[channel]

    async def new_channel(self, prefix: str = "specific.") -> str:
        return f"{prefix}.memory!{''.join(random.choices(string.ascii_letters, k=12))}"

    async def group_add(self, group: str, channel: str) -> None:
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        with self._lock:
            self._groups.setdefault(group, set()).add(channel)

    async def group_discard(self, group: str, channel: str) -> None:
        with self._lock:
            members = self._groups.get(group)
            if members is not None:
                members.discard(channel)
                if not members:
                    del self._groups[group]

    async def group_send(self, group: str, message: dict) -> None:
        self.require_valid_group_name(group)
        self.group_send_threadsafe(group, message)

    async def flush(self) -> None:
        with self._lock:
            self._inboxes.clear()
            self._groups.clear()

    async def close(self) -> None:
        pass
