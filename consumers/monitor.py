"""``/ws/monitor/``: every execution's status changes, live, for staff with ``mcp_tools.view_all_executions``.

On connect: ``monitor.snapshot`` (active executions and per-tool stats), then
``execution.status`` and terminal events of every user's executions, each
with ``tool``, ``user`` and ``status`` (the *feed*). Deltas only for
executions the monitor ``subscribe``s to. An event is never delivered twice:
a subscription skips what the feed already sent (``Cursor.skip``), and the
feed skips what a subscription delivers.
"""

from __future__ import annotations

from collections import OrderedDict

from channels.db import database_sync_to_async

from mcp_tools import selectors
from mcp_tools.events import MONITOR_GROUP, MONITOR_TYPES, TERMINAL_TYPES, Event

from .executions import CLOSE_FORBIDDEN, ExecutionConsumer

# Executions whose feed events this connection remembers (the most recent ones).
REMEMBERED_EXECUTIONS = 10_000


class MonitorConsumer(ExecutionConsumer):
    in_monitor_group = False

    async def on_authenticated(self) -> None:
        """Called once the user is known: monitors get the feed, others 4403 (selectors.may_monitor)."""
        if not await database_sync_to_async(selectors.may_monitor)(self.user):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.fed: OrderedDict[str, set[int]] = OrderedDict()  # execution -> seqs the feed sent
        self.who: dict[str, dict[str, str]] = {}  # execution -> {"tool", "user"}
        await self.channel_layer.group_add(MONITOR_GROUP, self.channel_name)
        self.in_monitor_group = True
        await self.send_json(await database_sync_to_async(selectors.monitor_snapshot)())

    async def release(self) -> None:
        """Leave the feed and every subscription."""
        if self.in_monitor_group:
            self.in_monitor_group = False
            try:
                await self.channel_layer.group_discard(MONITOR_GROUP, self.channel_name)
            except Exception:  # the layer may be down; its membership expires by itself
                pass
        await super().release()

    async def follow(self, execution_id: str, **options) -> None:
        if execution_id not in self.who:
            self.who[execution_id] = await database_sync_to_async(selectors.execution_owner)(execution_id)
        await super().follow(execution_id, skip=set(self.fed.get(execution_id, ())), **options)

    async def monitor_event(self, message: dict) -> None:
        """Called for each status or terminal event of any execution."""
        event = message["event"]
        execution_id = event["execution_id"]
        self.who[execution_id] = {"tool": event["tool"], "user": event["user"]}
        subscriptions = self.subscriptions
        if subscriptions is not None and execution_id in subscriptions.cursors:
            await subscriptions.live(event)  # the subscription's rules decide
            return
        seen = self.fed.setdefault(execution_id, set())
        self.fed.move_to_end(execution_id)
        if event["seq"] in seen:
            return
        seen.add(event["seq"])
        while len(self.fed) > REMEMBERED_EXECUTIONS:
            forgotten, _ = self.fed.popitem(last=False)
            self.who.pop(forgotten, None)
        await self.send_json(event)

    async def send_event(self, event: Event) -> None:
        """A subscription's event: status and terminal ones carry tool and user on the monitor, as the feed's do."""
        execution_id = event["execution_id"]
        self.fed.setdefault(execution_id, set()).add(event["seq"])
        if event["type"] in MONITOR_TYPES and "tool" not in event and execution_id in self.who:
            event = {**event, **self.who[execution_id]}
        await self.send_json(event)
        if event["type"] in TERMINAL_TYPES:
            self.who.pop(execution_id, None)
