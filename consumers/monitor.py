"""``/ws/monitor/``: staff with ``mcp_tools.view_all_executions``; every execution's status changes, live.

On connect: ``monitor.snapshot`` (active executions and per-tool stats), then
``execution.status`` and terminal events of every user's executions, each
with ``tool``, ``user`` and ``status``. Deltas only for executions the
monitor ``subscribe``s to; an event is never delivered twice.
"""
from __future__ import annotations

from channels.db import database_sync_to_async

from mcp_tools import selectors
from mcp_tools.eventlog import TERMINAL_TYPES
from mcp_tools.events import MONITOR_GROUP

from .executions import CLOSE_FORBIDDEN, ExecutionConsumer


class MonitorConsumer(ExecutionConsumer):
    async def on_authenticated(self) -> None:
        """Called once the user is known: monitors get the feed, others 4403 (selectors.may_monitor)."""
        if not await database_sync_to_async(selectors.may_monitor)(self.user):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        await self.channel_layer.group_add(MONITOR_GROUP, self.channel_name)
        self.in_monitor_group = True
        await self.send_json(await database_sync_to_async(selectors.monitor_snapshot)())

    async def disconnect(self, code: int) -> None:
        """Called when the socket closes: leave the feed and every subscription."""
        if getattr(self, "in_monitor_group", False):
            await self.channel_layer.group_discard(MONITOR_GROUP, self.channel_name)
        await super().disconnect(code)

    async def monitor_event(self, message: dict) -> None:
        """Called for each status or terminal event of any execution."""
        event = message["event"]
        execution_id = event["execution_id"]
        if execution_id in self.subscriptions:
            await self.execution_event(message)  # same contiguity rules as the subscription
            return
        if event["seq"] <= self.delivered.get(execution_id, 0):
            return
        await self.send_json(event)
        if event["type"] in TERMINAL_TYPES:
            self.delivered.pop(execution_id, None)
        else:
            self.delivered[execution_id] = event["seq"]
