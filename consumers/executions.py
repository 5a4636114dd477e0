"""``/ws/executions/``: run tools and watch your own executions.

Delivery rules (PROTOCOL.md) kept here, per connection:

- ``delivered[execution_id]`` is the highest seq sent for that execution.
  A live event at or below it is a duplicate and dropped; one above
  ``delivered + 1`` means the channel layer lost something, and the gap is
  filled from the event log before it is sent. So a client sees every seq
  exactly once, in order, whatever the layer did.
- ``subscribe`` joins the group *before* reading the log, so nothing falls
  between the replay and the live stream.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db import DatabaseError
from redis.exceptions import RedisError

from mcp_tools import selectors, services
from mcp_tools.errors import InvalidMessage, RateLimited, ServiceError
from mcp_tools.eventlog import TERMINAL_TYPES
from mcp_tools.events import execution_group

from .protocol import (MessageTooLarge, check_envelope, decode_frame, field_bool, field_object, field_seq, field_str,
                       request_id_of)

logger = logging.getLogger(__name__)

# Outages of PostgreSQL or Redis: the client gets internal_error with a message it can act on.
BACKING_SERVICE_ERRORS = (DatabaseError, RedisError)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_MESSAGE_TOO_LARGE = 1009
CLOSE_INTERNAL_ERROR = 1011
CLOSE_IDLE = 4408
CLOSE_TOO_MANY_CONNECTIONS = 4429


class ConnectionCounter:
    """Open connections per user, in this server process (exact, nothing to leak)."""

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}

    def open(self, user_id: int) -> bool:
        if self.counts.get(user_id, 0) >= settings.MCP_CONFIG["WS_MAX_CONNECTIONS_PER_USER"]:
            return False
        self.counts[user_id] = self.counts.get(user_id, 0) + 1
        return True

    def close(self, user_id: int) -> None:
        self.counts[user_id] -= 1
        if not self.counts[user_id]:
            del self.counts[user_id]


connections = ConnectionCounter()
# Channel-layer messages whose handlers never touch the database (see ``dispatch``).
DATABASE_FREE_MESSAGES = frozenset({"execution.event", "monitor.event"})


class ExecutionConsumer(AsyncWebsocketConsumer):
    """One client connection. Handlers are named ``handle_<type>``."""

    async def connect(self) -> None:
        """Called on the handshake: accept first, so 44xx close codes survive daphne."""
        self.user = self.scope.get("user")
        self.subscriptions: set[str] = set()
        self.delivered: dict[str, int] = {}
        self.last_event_at: dict[str, float] = {}
        self.last_client_frame_at = time.monotonic()
        self.watchdog: asyncio.Task | None = None
        # Replay, gap fill and catch-up read the log and send; one at a time.
        self.delivery_lock = asyncio.Lock()
        await self.accept()
        if self.user is None or not self.user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        if not connections.open(self.user.pk):
            limit = settings.MCP_CONFIG["WS_MAX_CONNECTIONS_PER_USER"]
            await self.send_error(RateLimited(f"At most {limit} open connections per user.", retry_after=5), None)
            await self.close(code=CLOSE_TOO_MANY_CONNECTIONS)
            return
        self.counted = True
        self.watchdog = asyncio.create_task(self.watch())
        await self.on_authenticated()

    async def on_authenticated(self) -> None:
        """Called once the user is known; the monitor adds its feed here."""

    async def disconnect(self, code: int) -> None:
        """Called when the socket closes: leave every group."""
        if getattr(self, "watchdog", None) is not None:
            self.watchdog.cancel()
        if getattr(self, "counted", False):
            connections.close(self.user.pk)
        for execution_id in list(getattr(self, "subscriptions", ())):
            try:
                await self.channel_layer.group_discard(execution_group(execution_id), self.channel_name)
            except Exception:  # the layer may be down; its membership expires by itself
                logger.warning("group_discard failed for %s", execution_id, exc_info=True)

    async def watch(self) -> None:
        """Runs while connected: catch up silent subscriptions from the event log
        (the channel layer may have lost their latest events) and close idle
        connections. If the event store itself is unreachable, say so and close
        with 1011 so the client reconnects and resubscribes with ``after_seq``."""
        config = settings.MCP_CONFIG
        interval = config["WS_CATCHUP_INTERVAL_S"]
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            if not self.subscriptions and now - self.last_client_frame_at > config["WS_IDLE_TIMEOUT_S"]:
                await self.close(code=CLOSE_IDLE)
                return
            try:
                for execution_id in list(self.subscriptions):
                    if now - self.last_event_at.get(execution_id, 0) >= interval:
                        await self.catch_up(execution_id)
            except Exception:
                logger.warning("Event store unreachable; closing the connection", exc_info=True)
                await self.send_error(ServiceError("The event service is unavailable; reconnect and resubscribe "
                                                   "with after_seq."), None)
                await self.close(code=CLOSE_INTERNAL_ERROR)
                return

    async def catch_up(self, execution_id: str) -> None:
        """Send what the log holds beyond what this connection has delivered."""
        async with self.delivery_lock:
            if execution_id not in self.subscriptions:
                return
            self.last_event_at[execution_id] = time.monotonic()
            missed, _ = await sync_to_async(selectors.execution_events, thread_sensitive=False)(
                execution_id, after_seq=self.delivered.get(execution_id, 0))
            for event in missed:
                await self.send_event(event)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Called for every client frame."""
        request_id = None
        try:
            if bytes_data is not None:
                self._check_size(len(bytes_data))
                raise InvalidMessage("Binary frames are not accepted; send JSON text.")
            self.last_client_frame_at = time.monotonic()
            self._check_size(len(text_data.encode()))
            frame = decode_frame(text_data)
            request_id = request_id_of(frame)
            message = check_envelope(frame)
            await getattr(self, f"handle_{message['type']}")(message, request_id)
        except MessageTooLarge as exc:
            await self.send_error(exc, request_id)
            await self.close(code=CLOSE_MESSAGE_TOO_LARGE)
        except ServiceError as exc:
            await self.send_error(exc, request_id)
        except BACKING_SERVICE_ERRORS:
            logger.warning("A backing service is unavailable", exc_info=True)
            await self.send_error(ServiceError("The database or Redis is unavailable right now; nothing was done. "
                                               "Retry shortly."), request_id)
        except Exception:
            logger.exception("Unexpected error handling a client message")
            await self.send_error(ServiceError("Something went wrong on our side; the message was not handled."),
                                  request_id)

    def _check_size(self, size: int) -> None:
        limit = settings.MCP_CONFIG["WS_MAX_MESSAGE_BYTES"]
        if size > limit:
            raise MessageTooLarge(f"The message is {size} bytes; the limit is {limit}.")

    # --- Client messages.

    async def handle_execute(self, message: dict, request_id: str | None) -> None:
        tool = field_str(message, "tool")
        parameters = field_object(message, "parameters", {})
        use_cache = field_bool(message, "use_cache", True)
        # Not thread-sensitive: executes from many connections run side by side
        # (each with its own pooled connection) instead of queueing behind
        # channels' one sync thread, which made `accepted` wait seconds at 100
        # starts per second (bench/, docs/benchmarks.md).
        execution = await database_sync_to_async(services.execution_start, thread_sensitive=False)(
            user=self.user, tool_name=tool, parameters=parameters, use_cache=use_cache, defer_enqueue=True)
        execution_id = str(execution.pk)
        await self.send_json({"type": "execution.accepted", "execution_id": execution_id, "seq": 0,
                              "request_id": request_id, "tool": tool, "status": "pending"})
        # Recorded and acknowledged; now the task. A broker failure ends it as failed
        # (queue_unavailable), which the subscription delivers, and answers with an error.
        try:
            await database_sync_to_async(services.execution_enqueue, thread_sensitive=False)(
                execution, use_cache=use_cache)
        except Exception:
            logger.warning("Execution %s could not be queued", execution_id, exc_info=True)
            await self.subscribe(execution_id, after_seq=0)
            raise ServiceError("The task queue is unavailable: the execution was recorded and has failed "
                               "(queue_unavailable). Retry shortly.") from None
        await self.subscribe(execution_id, after_seq=0)

    async def handle_subscribe(self, message: dict, request_id: str | None) -> None:
        execution_id = field_str(message, "execution_id")
        after_seq = field_seq(message, "after_seq")
        execution = await database_sync_to_async(selectors.execution_get_visible)(
            user=self.user, execution_id=execution_id)
        await self.subscribe(str(execution.pk), after_seq=after_seq, request_id=request_id, announce=True)

    async def handle_unsubscribe(self, message: dict, request_id: str | None) -> None:
        execution_id = field_str(message, "execution_id")
        execution = await database_sync_to_async(selectors.execution_get_visible)(
            user=self.user, execution_id=execution_id)
        await self.unsubscribe(str(execution.pk))
        await self.send_json({"type": "unsubscribed", "execution_id": str(execution.pk), "request_id": request_id})

    async def handle_cancel(self, message: dict, request_id: str | None) -> None:
        execution_id = field_str(message, "execution_id")
        await database_sync_to_async(services.execution_cancel)(user=self.user, execution_id=execution_id)

    async def handle_list_tools(self, message: dict, request_id: str | None) -> None:
        tools = await database_sync_to_async(lambda: [selectors.tool_describe(t) for t in selectors.tools_active()])()
        await self.send_json({"type": "tools", "tools": tools, "request_id": request_id})

    async def handle_ping(self, message: dict, request_id: str | None) -> None:
        await self.send_json({"type": "pong", "request_id": request_id})

    # --- Subscriptions and delivery.

    async def subscribe(self, execution_id: str, *, after_seq: int, request_id: str | None = None,
                        announce: bool = False) -> None:
        # Under the delivery lock: the watchdog's catch-up must not send events
        # between the reset of ``delivered`` and the replay (it would send them twice).
        async with self.delivery_lock:
            if execution_id not in self.subscriptions:
                await self.channel_layer.group_add(execution_group(execution_id), self.channel_name)
                self.subscriptions.add(execution_id)
            self.delivered[execution_id] = after_seq
            self.last_event_at[execution_id] = time.monotonic()
            events, last_seq = await sync_to_async(selectors.execution_events, thread_sensitive=False)(
                execution_id, after_seq=after_seq)
            if announce:
                await self.send_json({"type": "subscribed", "execution_id": execution_id, "last_seq": last_seq,
                                      "request_id": request_id})
            for event in events:
                await self.send_event(event)

    async def unsubscribe(self, execution_id: str) -> None:
        if execution_id in self.subscriptions:
            self.subscriptions.discard(execution_id)
            await self.channel_layer.group_discard(execution_group(execution_id), self.channel_name)

    async def dispatch(self, message: dict) -> None:
        """Called for every message; live events skip channels' database clean-up.

        channels runs ``close_old_connections`` in its one sync thread before
        every handler. Live events touch no database, and at thousands per
        second that hop cost a quarter of daphne's CPU and queued every event
        behind one thread (bench/, docs/benchmarks.md).
        """
        if message["type"] in DATABASE_FREE_MESSAGES:
            await getattr(self, message["type"].replace(".", "_"))(message)
        else:
            await super().dispatch(message)

    async def execution_event(self, message: dict) -> None:
        """Called for each event published to a subscribed execution's group."""
        event = message["event"]
        execution_id = event["execution_id"]
        if execution_id not in self.subscriptions:
            return
        last = self.delivered.get(execution_id, 0)
        if event["seq"] <= last:
            return
        self.last_event_at[execution_id] = time.monotonic()
        if event["seq"] > last + 1:  # the channel layer lost something: fill from the log
            await self.catch_up(execution_id)
            return
        await self.send_event(event)

    async def send_event(self, event: dict) -> None:
        """Send one execution event unless this connection already had it."""
        execution_id = event["execution_id"] if "execution_id" in event else None
        if execution_id is None:
            return
        if event["seq"] <= self.delivered.get(execution_id, 0):
            return
        self.delivered[execution_id] = event["seq"]
        await self.send_json(event)
        if event["type"] in TERMINAL_TYPES:
            await self.unsubscribe(execution_id)

    # --- Output.

    async def send_json(self, data: dict[str, Any]) -> None:
        if data.get("request_id", "") is None:
            data = {k: v for k, v in data.items() if k != "request_id"}
        await self.send(text_data=json.dumps(data, separators=(",", ":")))

    async def send_error(self, error: ServiceError, request_id: str | None) -> None:
        await self.send_json({"type": "error", **error.as_dict(), "request_id": request_id})
