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

Delivery is ``mcp_tools.delivery.follow``: the rules every transport keeps
(join before read, no duplicates, no gaps, the idle poll, epochs).
``?epoch=`` names the epoch a ``Last-Event-ID`` belongs to: if the live log
was started again since, ``execution.reset`` comes first, then the events
from seq 1 (their ids start again too).

Authentication, first one present judged: ``Authorization: Token <key>``,
``?token=<key>`` (``EventSource`` cannot set headers), the session cookie.
Users stream their own executions only; anything else is 404.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator

from channels.db import database_sync_to_async
from django.http import HttpRequest, HttpResponseBase, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET
from rest_framework import exceptions as drf_exceptions
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.request import Request

from mcp_tools import delivery, metrics
from mcp_tools.errors import InvalidMessage, ServiceError
from mcp_tools.events import Event
from mcp_tools.security.origin import FOREIGN_ORIGIN_MESSAGE, cookie_request_allowed

from .exceptions import error_body, service_error_parts
from .views import own_execution

logger = logging.getLogger(__name__)

KEEPALIVE_S = 15.0


class QueryTokenAuthentication(TokenAuthentication):
    """``?token=<key>``: the only way an ``EventSource`` can present a token."""

    def authenticate(self, request: Request):
        key = request.query_params.get("token")
        return None if key is None else self.authenticate_credentials(key)


def _authenticate(django_request: HttpRequest):
    """The user, None when no credentials were given; AuthenticationFailed for bad ones."""
    request = Request(
        django_request, authenticators=[TokenAuthentication(), QueryTokenAuthentication(), SessionAuthentication()]
    )
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
async def execution_events_view(request: HttpRequest, pk: str) -> HttpResponseBase:
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
    stream = event_stream(str(execution.pk), after_seq=after_seq, epoch=request.GET.get("epoch") or None)
    response = StreamingHttpResponse(stream, content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response


def _unauthenticated(message: str) -> JsonResponse:
    return JsonResponse(error_body("not_authenticated", message), status=401, headers={"WWW-Authenticate": "Token"})


def sse_format(event: Event) -> str:
    data = json.dumps(event, separators=(",", ":"))
    return f"id: {event['seq']}\nevent: {event['type']}\ndata: {data}\n\n"


async def event_stream(execution_id: str, *, after_seq: int, epoch: str | None = None) -> AsyncIterator[str]:
    """The execution's events after ``after_seq`` until its terminal one, as SSE; a keepalive when silent."""
    events = delivery.follow(execution_id, after_seq=after_seq, epoch=epoch)
    pending: asyncio.Future | None = None
    metrics.connection_opened("sse")
    try:
        while True:
            pending = pending or asyncio.ensure_future(anext(events))
            done, _ = await asyncio.wait({pending}, timeout=KEEPALIVE_S)
            if not done:
                yield ": keepalive\n\n"
                continue
            try:
                event = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            yield sse_format(event)
            metrics.events_relayed("sse", [event])
    finally:
        metrics.connection_closed("sse")
        if pending is not None:
            pending.cancel()
        await events.aclose()
