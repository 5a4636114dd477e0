"""Following one execution from the MCP server: every event once, in seq order.

The MCP server is a follower like any other transport; the rules (join
before read, no duplicates, no gaps, the idle poll, epochs) are
``mcp_tools.delivery``'s::

    terminal = await follow_execution(execution_id, on_event=send_progress)

``execution.reset`` (the live log was lost and started again) reaches
``on_event`` too: the text so far is to be dropped.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from mcp_tools import delivery
from mcp_tools.events import TERMINAL_TYPES, Event

EventCallback = Callable[[Event], Awaitable[None]]


async def follow_execution(execution_id: str, *, on_event: EventCallback, after_seq: int = 0) -> Event:
    """Call ``on_event`` with each event after ``after_seq``; return the terminal event.

    A terminal event at or below ``after_seq`` (a re-attached call that had
    seen everything) is returned, not delivered again.
    """
    terminal: Event = {}
    async for event in delivery.follow(execution_id, after_seq=after_seq):
        await on_event(event)
        if event["type"] in TERMINAL_TYPES:
            terminal = event
    if not terminal:
        events = (await delivery.read_events(execution_id)).events
        terminal = next((e for e in reversed(events) if e["type"] in TERMINAL_TYPES), {})
    return terminal
