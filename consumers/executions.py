"""``/ws/executions/``: run tools and watch your own executions (docs/protocol.md).

One consumer per connection. A client frame is parsed and checked
(``protocol.py``), then handled by ``handle_<type>``, which calls the same
services every transport calls. Following executions — join before read, no
duplicates, no gaps, the idle poll, epochs — is ``mcp_tools.delivery``'s
``Subscriptions``; this module only sends what it says.

Whatever ends a connection — a close, an error close, a refusal, a crash in
a handler — runs ``release`` (``__call__``'s ``finally``), which gives back
the user's connection slot and leaves every group: ``disconnect`` alone is
not enough, because daphne skips it when an application closes with a code
it refuses.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db import DatabaseError
from redis.exceptions import RedisError

from mcp_tools import metrics, selectors, services
from mcp_tools.delivery import Subscriptions, until_next_poll
from mcp_tools.errors import InvalidMessage, QueueUnavailable, RateLimited, ServiceError
from mcp_tools.events import Event, Snapshot

from .protocol import (
    MessageTooLarge,
    check_envelope,
    decode_frame,
    field_bool,
    field_object,
    field_optional_str,
    field_seq,
    field_str,
    request_id_of,
)
from .slots import slots

logger = logging.getLogger(__name__)

# Outages of PostgreSQL or Redis: the client gets internal_error with a message it can act on.
BACKING_SERVICE_ERRORS = (DatabaseError, RedisError, OSError)

# Close codes (docs/protocol.md). An application may only use 1000 and 3000-4999 under daphne.
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_MESSAGE_TOO_LARGE = 4009
CLOSE_SERVICE_UNAVAILABLE = 4011
CLOSE_IDLE = 4408
CLOSE_TOO_MANY_CONNECTIONS = 4429


# Channel-layer messages whose handlers never touch the database (see ``dispatch``).
DATABASE_FREE_MESSAGES = frozenset({"execution.event", "monitor.event"})


class ExecutionConsumer(AsyncWebsocketConsumer):
    """One client connection. Handlers are named ``handle_<type>``."""

    user: Any = None
    slot_user_id: int | None = None
    watchdog: asyncio.Task | None = None
    subscriptions: Subscriptions | None = None

    async def __call__(self, scope, receive, send) -> None:
        """The whole life of the connection; whatever ends it, ``release`` runs."""
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.release()

    async def connect(self) -> None:
        """Called on the handshake: accept first, so 44xx close codes survive daphne."""
        self.user = self.scope.get("user")
        self.last_client_frame_at = time.monotonic()
        await self.accept()
        if self.user is None or not self.user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        if not slots.take(self.user.pk):
            metrics.rate_limited("ws_connections")
            limit = settings.MCP_CONFIG["WS_MAX_CONNECTIONS_PER_USER"]
            await self.send_error(RateLimited(f"At most {limit} open connections per user.", retry_after=5), None)
            await self.close(code=CLOSE_TOO_MANY_CONNECTIONS)
            return
        self.slot_user_id = self.user.pk
        metrics.connection_opened("websocket")
        self.subscriptions = Subscriptions(channel_name=self.channel_name, send=self.send_event)
        self.watchdog = asyncio.create_task(self.watch())
        await self.on_authenticated()

    async def on_authenticated(self) -> None:
        """Called once the user is known; the monitor adds its feed here."""

    async def disconnect(self, code: int) -> None:
        """Called when the socket closes."""
        await self.release()

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        """Close from our side: the slot and the groups go at once, not when the client answers."""
        await super().close(code=code, reason=reason)
        await self.release()

    async def release(self) -> None:
        """Give back the connection slot and leave every group; safe to call more than once."""
        if self.watchdog is not None and self.watchdog is not asyncio.current_task():
            self.watchdog.cancel()
        self.watchdog = None
        if self.slot_user_id is not None:
            slots.give_back(self.slot_user_id)
            self.slot_user_id = None
            metrics.connection_closed("websocket")
        if self.subscriptions is not None:
            subscriptions, self.subscriptions = self.subscriptions, None
            await subscriptions.close()

    async def watch(self) -> None:
        """While connected: the idle poll of every quiet subscription, and closing idle connections.
        If the event store is unreachable, say so and close (4011): the client reconnects and resubscribes."""
        config = settings.MCP_CONFIG
        while True:
            await asyncio.sleep(until_next_poll())
            subscriptions = self.subscriptions
            if subscriptions is None:
                return
            if not subscriptions.cursors and time.monotonic() - self.last_client_frame_at > config["WS_IDLE_TIMEOUT_S"]:
                await self.close(code=CLOSE_IDLE)
                return
            try:
                await subscriptions.poll()
            except Exception:
                logger.warning("Event store unreachable; closing the connection", exc_info=True)
                await self.send_error(
                    ServiceError("The event service is unavailable; reconnect and resubscribe with after_seq."), None
                )
                await self.close(code=CLOSE_SERVICE_UNAVAILABLE)
                return

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Called for every client frame."""
        request_id = None
        try:
            self.last_client_frame_at = time.monotonic()
            if bytes_data is not None:
                self._check_size(len(bytes_data))
                raise InvalidMessage("Binary frames are not accepted; send JSON text.")
            self._check_size(len((text_data or "").encode()))
            frame = decode_frame(text_data or "")
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
            await self.send_error(
                ServiceError("The database or Redis is unavailable right now; nothing was done. Retry shortly."),
                request_id,
            )
        except Exception:
            logger.exception("Unexpected error handling a client message")
            await self.send_error(
                ServiceError("Something went wrong on our side; the message was not handled."), request_id
            )

    def _check_size(self, size: int) -> None:
        limit = settings.MCP_CONFIG["WS_MAX_MESSAGE_BYTES"]
        if size > limit:
            raise MessageTooLarge(f"The message is {size} bytes; the limit is {limit}.")

    # --- Client messages.

    async def handle_execute(self, message: dict, request_id: str | None) -> None:
        tool = field_str(message, "tool")
        parameters = field_object(message, "parameters", {})
        start = (
            services.execution_start if field_bool(message, "use_cache", True) else services.execution_start_uncached
        )
        # Not thread-sensitive: executes from many connections run side by side (each
        # with its own pooled connection) instead of queueing behind channels' one sync thread.
        refused: QueueUnavailable | None = None
        try:
            execution = await database_sync_to_async(start, thread_sensitive=False)(
                user=self.user,
                tool_name=tool,
                parameters=parameters,
                idempotency_key=field_optional_str(message, "idempotency_key"),
            )
        except QueueUnavailable as exc:  # recorded, then failed: the client sees it like any other execution
            execution, refused = exc.execution, exc
        accepted: dict[str, Any] = {
            "type": "execution.accepted",
            "execution_id": str(execution.pk),
            "seq": 0,
            "request_id": request_id,
            "tool": tool,
            "status": "pending",
        }
        if execution.reattached:  # an earlier request's execution (same idempotency key)
            accepted.update(status=execution.status, reattached=True)
        await self.send_json(accepted)
        await self.follow(str(execution.pk), after_seq=0)
        if refused is not None:
            raise refused

    async def handle_subscribe(self, message: dict, request_id: str | None) -> None:
        execution_id = field_str(message, "execution_id")
        after_seq = field_seq(message, "after_seq")
        epoch = field_optional_str(message, "epoch")
        execution = await database_sync_to_async(selectors.execution_get_visible)(
            user=self.user, execution_id=execution_id
        )

        async def announce(snapshot: Snapshot) -> None:
            await self.send_json(
                {
                    "type": "subscribed",
                    "execution_id": str(execution.pk),
                    "last_seq": snapshot.last_seq,
                    "epoch": snapshot.epoch,
                    "request_id": request_id,
                }
            )

        await self.follow(str(execution.pk), after_seq=after_seq, epoch=epoch, announce=announce)

    async def handle_unsubscribe(self, message: dict, request_id: str | None) -> None:
        execution = await database_sync_to_async(selectors.execution_get_visible)(
            user=self.user, execution_id=field_str(message, "execution_id")
        )
        if self.subscriptions is not None:
            await self.subscriptions.unsubscribe(str(execution.pk))
        await self.send_json({"type": "unsubscribed", "execution_id": str(execution.pk), "request_id": request_id})

    async def handle_cancel(self, message: dict, request_id: str | None) -> None:
        await database_sync_to_async(services.execution_cancel)(
            user=self.user, execution_id=field_str(message, "execution_id")
        )

    async def handle_list_tools(self, message: dict, request_id: str | None) -> None:
        tools = await database_sync_to_async(
            lambda: [selectors.tool_describe(t) for t in selectors.tools_visible_to(self.user)]
        )()
        await self.send_json({"type": "tools", "tools": tools, "request_id": request_id})

    async def handle_ping(self, message: dict, request_id: str | None) -> None:
        await self.send_json({"type": "pong", "request_id": request_id})

    # --- Delivery.

    async def follow(self, execution_id: str, **options: Any) -> None:
        if self.subscriptions is not None:
            await self.subscriptions.subscribe(execution_id, **options)

    async def dispatch(self, message: dict) -> None:
        """Called for every message; live events skip channels' database clean-up.

        channels runs ``close_old_connections`` in its one sync thread before
        every handler; live events touch no database, and at thousands per
        second that hop queued every event behind one thread (docs/benchmarks.md).
        """
        if message["type"] in DATABASE_FREE_MESSAGES:
            await getattr(self, message["type"].replace(".", "_"))(message)
        else:
            await super().dispatch(message)

    async def execution_event(self, message: dict) -> None:
        """Called for each event published to a followed execution's group."""
        if self.subscriptions is not None:
            await self.subscriptions.live(message["event"])

    async def send_event(self, event: Event) -> None:
        await self.send_json(event)

    # --- Output.

    async def send_json(self, data: dict[str, Any]) -> None:
        if data.get("request_id", "") is None:
            data = {k: v for k, v in data.items() if k != "request_id"}
        await self.send(text_data=json.dumps(data, separators=(",", ":")))

    async def send_error(self, error: ServiceError, request_id: str | None) -> None:
        await self.send_json({"type": "error", **error.as_dict(), "request_id": request_id})
