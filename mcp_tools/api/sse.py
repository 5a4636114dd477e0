"""Server-sent events: one execution's events over plain HTTP.

For clients that cannot use WebSockets (curl, ``EventSource``, proxies that
strip ``Upgrade``). ``GET /api/executions/{id}/events/`` answers
``text/event-stream`` with PROTOCOL.md's execution events, one SSE event
each, the ``id`` being the event's ``seq``::

    id: 3
    event: execution.delta
    data: {"type":"execution.delta","text":"Hel","execution_id":"...","seq":3}

Stored events come first, then live ones; the response ends after the
terminal event (``execution.completed``/``failed``/``cancelled``). A
reconnecting ``EventSource`` sends ``Last-Event-ID`` and gets exactly the
events after it (``?after_seq=N`` does the same for other clients). A
``: keepalive`` comment goes out after every 15 s of silence.

Delivery keeps the rules of ``consumers/executions.py``: join the
execution's group *before* reading the log, drop what was already sent, fill
any gap from the log. And because nothing else wakes an idle stream, the log
is read again after each second without news: the channel layer is the fast
path, the event log is the truth.

Authentication, first one present judged: ``Authorization: Token <key>``,
``?token=<key>`` (``EventSource`` cannot set headers), the session cookie.
Users stream their own executions only; anything else is 404.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET
from rest_framework import exceptions as drf_exceptions
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.request import Request

from mcp_tools import selectors
from mcp_tools.errors import InvalidMessage, ServiceError
from mcp_tools.eventlog import TERMINAL_TYPES, Event
from mcp_tools.events import execution_group
from mcp_tools.security.origin import FOREIGN_ORIGIN_MESSAGE, cookie_request_allowed

from .exceptions import error_body, service_error_parts
from .views import own_execution

logger = logging.getLogger(__name__)

KEEPALIVE_S = 15.0
# How long a stream waits on the channel layer before it reads the log itself.
LOG_POLL_S = 1.0


class QueryTokenAuthentication(TokenAuthentication):
    """``?token=<key>``: the only way an ``EventSource`` can present a token."""

    def authenticate(self, request: Request):
        key = request.query_params.get("token")
        return None if key is None else self.authenticate_credentials(key)


def _authenticate(django_request: HttpRequest):
    """The user, None when no credentials were given; AuthenticationFailed for bad ones."""
    request = Request(django_request, authenticators=[
        TokenAuthentication(), QueryTokenAuthentication(), SessionAuthentication()])
    user = request.user
    return user if user is not None and user.is_authenticated else None


def _resume_point(request: HttpRequest) -> int:
    """``Last-Event-ID`` (what EventSource sends on reconnect) wins over ``?after_seq=``."""
    raw = request.headers.get("Last-Event-ID") or request.GET.get("after_seq") or "0"
    try:
        after_seq = int(raw)
    except ValueError:
        after_seq = -1
    if after_seq < 0:
        raise InvalidMessage("Last-Event-ID / after_seq must be a non-negative integer (an event's seq).")
    return after_seq


@csrf_exempt  # GET only: nothing to forge, and other methods get their 405
@require_GET
async def execution_events_view(request: HttpRequest, pk: str) -> HttpResponse:
    """``GET /api/executions/{id}/events/``: the stream, or a JSON error before it starts."""
    if not cookie_request_allowed(request):
        return JsonResponse(error_body("permission_denied", FOREIGN_ORIGIN_MESSAGE), status=403)
    try:
        user = await database_sync_to_async(_authenticate)(request)
    except drf_exceptions.AuthenticationFailed as exc:
        return _unauthenticated(str(exc.detail))
    if user is None:
        return _unauthenticated("Authentication credentials were not provided.")
    try:
        after_seq = _resume_point(request)
        execution = await database_sync_to_async(own_execution)(user=user, execution_id=pk)
    except ServiceError as exc:
        http_status, body, headers = service_error_parts(exc)
        return JsonResponse(body, status=http_status, headers=headers)
    stream = event_stream(str(execution.pk), after_seq=after_seq, ended=execution.is_terminal)
    response = StreamingHttpResponse(stream, content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response


def _unauthenticated(message: str) -> JsonResponse:
    return JsonResponse(error_body("not_authenticated", message), status=401,
                        headers={"WWW-Authenticate": "Token"})


def sse_format(event: Event) -> str:
    data = json.dumps(event, separators=(",", ":"))
    return f"id: {event['seq']}\nevent: {event['type']}\ndata: {data}\n\n"


class _Relay:
    """What one stream has sent: the highest seq, and whether the end went out."""

    def __init__(self, execution_id: str, after_seq: int) -> None:
        self.execution_id = execution_id
        self.delivered = after_seq
        self.ended = False

    async def from_log(self) -> list[str]:
        # database_sync_to_async: the connection (a pooled one) is given back after each read.
        events, _ = await database_sync_to_async(selectors.execution_events)(self.execution_id,
                                                                            after_seq=self.delivered)
        return self._accept(events)

    async def from_layer(self, event: Event) -> list[str]:
        if event["seq"] <= self.delivered:
            return []
        if event["seq"] > self.delivered + 1:
            return await self.from_log()  # the layer lost something: the log has it
        return self._accept([event])

    def _accept(self, events: list[Event]) -> list[str]:
        chunks = []
        for event in events:
            if self.ended or event["seq"] <= self.delivered:
                continue
            self.delivered = event["seq"]
            self.ended = event["type"] in TERMINAL_TYPES
            chunks.append(sse_format(event))
        return chunks


async def event_stream(execution_id: str, *, after_seq: int, ended: bool) -> AsyncIterator[str]:
    """Stored events after ``after_seq``, then live ones until the terminal event."""
    layer = get_channel_layer()
    group = execution_group(execution_id)
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    receiver: asyncio.Future | None = None
    relay = _Relay(execution_id, after_seq)
    try:
        for chunk in await relay.from_log():
            yield chunk
        if ended:
            return  # it had ended before we looked: everything after after_seq is out
        receiver = asyncio.ensure_future(layer.receive(channel))
        quiet_since = time.monotonic()
        while not relay.ended:
            # asyncio.wait, not wait_for: a timeout must not cancel the pending
            # receive (the pub/sub layer unsubscribes a cancelled channel).
            done, _ = await asyncio.wait({receiver}, timeout=LOG_POLL_S)
            if done:
                message: dict[str, Any] = receiver.result()
                receiver = asyncio.ensure_future(layer.receive(channel))
                chunks = await relay.from_layer(message["event"])
            else:
                chunks = await relay.from_log()
            for chunk in chunks:
                yield chunk
            if chunks:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= KEEPALIVE_S:
                quiet_since = time.monotonic()
                yield ": keepalive\n\n"
    finally:
        if receiver is not None:
            receiver.cancel()
        await layer.group_discard(group, channel)
