"""Delivery: following an execution from a connection — every event once, in seq order, none lost.

Every transport follows executions through this module: the WebSocket
consumers (``Subscriptions``, one per connection), and the server-sent events
stream, the MCP server and the synchronous REST call (``follow``). The rules
live here and nowhere else:

1. **Join before read.** A follower joins the execution's group, then reads
   the event log: an event is either in what it read or arrives live.
2. **No duplicates.** A cursor remembers the highest seq it delivered; an
   event at or below it is dropped (and, on the monitor, one it already sent
   from the feed is skipped).
3. **No gaps.** A live event beyond ``delivered + 1`` means the channel layer
   lost something: the gap is read from the log first.
4. **Idle poll.** A cursor that heard nothing live for ``DELIVERY_POLL_S`` asks
   how far its log has got and reads it if it moved on, so even a lost *last*
   event arrives, a poll or two late. Every connection polls on the same clock
   tick and the process asks for all of them in one round trip
   (``mcp_tools/log_heads.py``).
5. **Epochs.** Events carry the log's epoch. If it changes (the live log was
   lost and started again), the cursor delivers ``execution.reset`` and then
   the new epoch's events from seq 1: the client drops what it had, never a
   silent gap.

The log is read from Redis (or memory) while the execution lives, and from
its row once the live log has expired.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncGenerator, Awaitable, Callable

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from . import log_heads, metrics
from .events import TERMINAL_TYPES, Event, Head, Snapshot, execution_group, get_event_log
from .selectors import execution_row_ended, stored_events

Send = Callable[[Event], Awaitable[None]]


def reset_event(execution_id: str, epoch: str) -> Event:
    """Tells a client to drop what it has of an execution: its events start again, from seq 1."""
    return {"type": "execution.reset", "execution_id": execution_id, "epoch": epoch, "seq": 0}


async def read_events(execution_id: str, *, after_seq: int = 0) -> Snapshot:
    """The events after ``after_seq``: from the live log, or from the row once the log has expired.

    A terminal event read from the live log is held back until the row has ended too. Its writer logs it
    (that claims the end), writes the row, and only then sends it; a follower that read it from the log in
    between told its client "completed" while the row still said running (and a synchronous REST execute
    answered 502). Held back, it arrives live once sent, or at the next read."""
    snapshot = await get_event_log().aread(execution_id, after_seq)
    if snapshot.epoch and snapshot.last_seq:
        if snapshot.ended and snapshot.events and not await database_sync_to_async(execution_row_ended)(execution_id):
            return dataclasses.replace(snapshot, events=snapshot.events[:-1], ended=False)
        return snapshot
    events, epoch = await database_sync_to_async(stored_events)(execution_id)
    if not events:
        return snapshot
    return Snapshot(events=[e for e in events if e["seq"] > after_seq], epoch=epoch, last_seq=len(events), ended=True)


class Cursor:
    """One follower's place in one execution's events."""

    def __init__(
        self, execution_id: str, *, after_seq: int = 0, epoch: str | None = None, skip: set[int] | None = None
    ) -> None:
        self.execution_id = execution_id
        self.delivered = after_seq
        self.epoch = epoch
        self.skip = skip or set()
        self.ended = False
        self.heard_at = time.monotonic()

    def live(self, event: Event) -> list[Event] | None:
        """The events to send for a live one, or None: read the log first (a gap, or another epoch)."""
        self.heard_at = time.monotonic()
        if self.ended:
            return []
        if self.epoch is not None and event.get("epoch", self.epoch) != self.epoch:
            return None
        if event["seq"] <= self.delivered:
            return []
        if event["seq"] > self.delivered + 1:
            return None
        return self._take([event])

    def from_log(self, snapshot: Snapshot) -> list[Event]:
        """The events to send from a read of the log (``read_events(after_seq=cursor.delivered)``)."""
        if self.ended or not snapshot.epoch:
            return []
        if self.epoch is not None and snapshot.epoch != self.epoch:
            return []  # read from seq 0 again: ``needs_reset`` said so
        self.epoch = snapshot.epoch
        events = self._take(snapshot.events)
        if snapshot.ended and self.delivered >= snapshot.last_seq:
            self.ended = True  # asked for what comes after the terminal event: nothing will
        return events

    def needs_reset(self, snapshot: Snapshot) -> bool:
        return bool(snapshot.epoch) and self.epoch is not None and snapshot.epoch != self.epoch

    def reset(self, epoch: str) -> Event:
        self.epoch, self.delivered, self.skip = epoch, 0, set()
        return reset_event(self.execution_id, epoch)

    def _take(self, events: list[Event]) -> list[Event]:
        out = []
        for event in events:
            if self.ended or event["seq"] <= self.delivered:
                continue
            self.delivered = event["seq"]
            self.ended = event["type"] in TERMINAL_TYPES
            if event["seq"] not in self.skip:
                out.append(event)
        return out

    def quiet(self) -> bool:
        """Nothing heard live for a poll period: the idle poll asks how far the log has got."""
        return time.monotonic() - self.heard_at >= settings.MCP_CONFIG["DELIVERY_POLL_S"]

    def behind(self, head: Head) -> bool:
        """Whether the log must be read: it holds events not delivered yet, started again, or is gone
        (expired into the row)."""
        return not head.epoch or (self.epoch is not None and head.epoch != self.epoch) or head.last_seq > self.delivered


def until_next_poll() -> float:
    """Seconds to the next idle-poll tick: every connection of the process polls at the same moments,
    so their questions leave together."""
    period = settings.MCP_CONFIG["DELIVERY_POLL_S"]
    return period - time.monotonic() % period


async def catch_up(cursor: Cursor) -> list[Event]:
    """Read the log after what the cursor delivered (a reset first if the epoch changed)."""
    snapshot = await read_events(cursor.execution_id, after_seq=cursor.delivered)
    metrics.log_read(cursor, snapshot)
    if not cursor.needs_reset(snapshot):
        return cursor.from_log(snapshot)
    reset = cursor.reset(snapshot.epoch)
    return [reset, *cursor.from_log(await read_events(cursor.execution_id))]


class Subscriptions:
    """A WebSocket connection's cursors: subscribe, live events, the idle poll. One at a time per connection."""

    def __init__(self, *, channel_name: str, send: Send) -> None:
        self.layer = get_channel_layer()
        self.channel_name = channel_name
        self.send = send
        self.cursors: dict[str, Cursor] = {}
        self.lock = asyncio.Lock()

    async def subscribe(
        self,
        execution_id: str,
        *,
        after_seq: int,
        epoch: str | None = None,
        skip: set[int] | None = None,
        announce: Callable[[Snapshot], Awaitable[None]] | None = None,
    ) -> None:
        """Follow an execution from ``after_seq``: join, read, (announce,) replay, then live events."""
        async with self.lock:
            if execution_id not in self.cursors:
                await self.layer.group_add(execution_group(execution_id), self.channel_name)
            cursor = self.cursors[execution_id] = Cursor(execution_id, after_seq=after_seq, epoch=epoch, skip=skip)
            snapshot = await read_events(execution_id, after_seq=after_seq)
            if announce is not None:
                await announce(snapshot)
            events = (
                cursor.from_log(snapshot)
                if not cursor.needs_reset(snapshot)
                else [cursor.reset(snapshot.epoch), *cursor.from_log(await read_events(execution_id))]
            )
            await self._deliver(cursor, events)

    async def unsubscribe(self, execution_id: str) -> None:
        async with self.lock:
            await self._leave(execution_id)

    async def live(self, event: Event) -> None:
        """A live event from the execution's group."""
        async with self.lock:
            cursor = self.cursors.get(event["execution_id"])
            if cursor is None:
                return
            events = cursor.live(event)
            await self._deliver(cursor, await catch_up(cursor) if events is None else events)

    async def poll(self) -> None:
        """Read the log of every quiet cursor whose log moved on (asked with every other connection's)."""
        async with self.lock:
            quiet = [c for c in self.cursors.values() if c.quiet()]
            if not quiet:
                return
            heads = await log_heads.ask([c.execution_id for c in quiet])
            for cursor in quiet:
                if cursor.behind(heads[cursor.execution_id]):
                    await self._deliver(cursor, await catch_up(cursor))

    async def close(self) -> None:
        for execution_id in list(self.cursors):
            with contextlib.suppress(Exception):  # the layer may be down; its membership expires by itself
                await self._leave(execution_id)

    async def _deliver(self, cursor: Cursor, events: list[Event]) -> None:
        for event in events:
            await self.send(event)
        metrics.events_relayed("websocket", events)
        if cursor.ended:
            await self._leave(cursor.execution_id)

    async def _leave(self, execution_id: str) -> None:
        if self.cursors.pop(execution_id, None) is not None:
            await self.layer.group_discard(execution_group(execution_id), self.channel_name)


async def follow(execution_id: str, *, after_seq: int = 0, epoch: str | None = None) -> AsyncGenerator[Event, None]:
    """Every event after ``after_seq`` until the terminal one (``execution.reset`` if the epoch changes).

    For followers that are not a Channels consumer: it takes a channel of its
    own and receives through a pump task, because cancelling ``layer.receive``
    (a timeout) makes the pub/sub layer drop the channel.
    """
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(execution_group(execution_id), channel)
    inbox: asyncio.Queue[Event] = asyncio.Queue()

    async def pump() -> None:
        while True:
            message = await layer.receive(channel)
            if message.get("type") == "execution.event":
                inbox.put_nowait(message["event"])

    pumping = asyncio.create_task(pump(), name=f"follow-{execution_id}")
    cursor = Cursor(execution_id, after_seq=after_seq, epoch=epoch)
    try:
        for event in await catch_up(cursor):
            yield event
        while not cursor.ended:
            try:
                event = await asyncio.wait_for(inbox.get(), settings.MCP_CONFIG["DELIVERY_POLL_S"])
            except TimeoutError:
                events = await catch_up(cursor)
            else:
                live = cursor.live(event)
                events = live if live is not None else await catch_up(cursor)
            for out in events:
                yield out
    finally:
        pumping.cancel()
        with contextlib.suppress(BaseException):
            await pumping
        with contextlib.suppress(Exception):
            await layer.group_discard(execution_group(execution_id), channel)


async def wait_for_end(execution_id: str) -> Event:
    """The terminal event of an execution, once it is logged (the synchronous REST call waits so)."""
    terminal: Event = {}
    async for event in follow(execution_id):
        terminal = event
    return terminal
