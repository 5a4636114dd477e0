"""Following one execution from the MCP server: every event once, in seq order.

The MCP server process is a subscriber like any WebSocket consumer: it joins
the execution's group on the channel layer *before* reading the stored log,
so nothing falls between the replay and the live stream, then takes live
events, dropping any it already had (by ``seq``) and filling any gap from the
event log (``selectors.execution_events``)::

    terminal = await follow_execution(execution_id, on_event=send_progress)

The channel layer is only the fast path (the pub/sub layer drops a message
nobody was subscribed for at that instant; PITFALLS.md). So if nothing
arrives for ``LOG_POLL_S`` the log is read again: a lost terminal event
delays the answer by a poll, never hangs it.

Live messages are received by a pump task and handed over through a memory
stream, because cancelling ``layer.receive()`` itself (a timeout) makes the
Redis pub/sub layer unsubscribe the channel.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable

import anyio
from anyio.abc import ObjectSendStream
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from mcp_tools import selectors
from mcp_tools.eventlog import TERMINAL_TYPES, Event
from mcp_tools.events import execution_group

logger = logging.getLogger(__name__)

# With no live message for this long, read the log in case the layer lost one.
LOG_POLL_S = 2.0

EventCallback = Callable[[Event], Awaitable[None]]


async def follow_execution(execution_id: str, *, on_event: EventCallback, after_seq: int = 0) -> Event:
    """Call ``on_event`` with each event of the execution after ``after_seq``; return its terminal event.

    A terminal event at or below ``after_seq`` is still returned (not delivered again).
    """
    layer = get_channel_layer()
    group = execution_group(execution_id)
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    send, receive = anyio.create_memory_object_stream[dict](math.inf)
    try:
        async with send, receive, anyio.create_task_group() as tasks:
            tasks.start_soon(_pump, layer, channel, send)
            terminal = await _Follower(execution_id, on_event, after_seq).run(receive)
            tasks.cancel_scope.cancel()
        return terminal
    finally:
        with anyio.CancelScope(shield=True):
            await layer.group_discard(group, channel)


async def _pump(layer, channel: str, send: ObjectSendStream[dict]) -> None:
    async with send:
        while True:
            await send.send(await layer.receive(channel))


class _Follower:
    """The delivery rules: ``last_seq`` is the highest seq handed on."""

    def __init__(self, execution_id: str, on_event: EventCallback, after_seq: int = 0) -> None:
        self.execution_id = execution_id
        self.on_event = on_event
        self.last_seq = after_seq
        self.terminal: Event | None = None

    async def run(self, receive) -> Event:
        if self.last_seq:
            await self.terminal_at_or_before()
        await self.catch_up()
        while self.terminal is None:
            message = None
            with anyio.move_on_after(LOG_POLL_S):
                message = await receive.receive()
            if message is None or message.get("type") != "execution.event":
                await self.catch_up()
                continue
            event = message["event"]
            if event["seq"] == self.last_seq + 1:
                await self.deliver(event)
            elif event["seq"] > self.last_seq:
                await self.catch_up()  # the layer lost something: the log has it
        return self.terminal

    async def catch_up(self) -> None:
        stored, _ = await sync_to_async(selectors.execution_events, thread_sensitive=False)(
            self.execution_id, after_seq=self.last_seq)
        for event in stored:
            if self.terminal is not None:
                return
            await self.deliver(event)

    async def terminal_at_or_before(self) -> None:
        """Resuming after the end: the terminal event is answered, not delivered again."""
        stored, _ = await sync_to_async(selectors.execution_events, thread_sensitive=False)(
            self.execution_id, after_seq=self.last_seq - 1)
        if stored and stored[0]["type"] in TERMINAL_TYPES:
            self.terminal = stored[0]

    async def deliver(self, event: Event) -> None:
        if event["seq"] <= self.last_seq:
            return
        self.last_seq = event["seq"]
        if event["type"] in TERMINAL_TYPES:
            self.terminal = event
        await self.on_event(event)
