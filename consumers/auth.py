"""Who is on the other end of a WebSocket, and may their page connect at all.

PROTOCOL.md's three ways, the first one *present* being the one judged (an
invalid header token is not rescued by a valid query token):

1. ``Authorization: Token <key>`` handshake header (DRF token),
2. ``?token=<key>`` in the query string (browsers cannot set headers),
3. the Django session cookie.

``websocket_auth_stack(app)`` wraps the router with all of it, plus the
Origin check (``mcp_tools/security/origin.py``): a handshake whose ``Origin``
is not the page's own origin — scheme, host and port — nor one of
``CSRF_TRUSTED_ORIGINS`` is refused with HTTP 403 before anything else runs
(a foreign page riding on the session cookie: another port or scheme of the
same host counts as foreign). One without ``Origin`` (scripts, servers) is
let through.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from channels.security.websocket import WebsocketDenier
from django.contrib.auth.models import AnonymousUser

from mcp_tools.security.origin import scope_origin_allowed


@database_sync_to_async
def user_for_token(key: str):
    from rest_framework.authtoken.models import Token

    try:
        token = Token.objects.select_related("user").get(key=key)
    except Token.DoesNotExist:
        return AnonymousUser()
    return token.user if token.user.is_active else AnonymousUser()


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin1")
    return None


class TokenAuthMiddleware(BaseMiddleware):
    """Sets ``scope["user"]`` from a header or query token when one is present."""

    async def __call__(self, scope, receive, send):
        header = _header(scope, b"authorization")
        query = parse_qs(scope.get("query_string", b"").decode("latin1"))
        if header is not None:
            scheme, _, key = header.partition(" ")
            valid = scheme.lower() == "token" and key.strip()
            scope = {
                **scope,
                "user": await user_for_token(key.strip()) if valid else AnonymousUser(),
                "auth_method": "header",
            }
        elif "token" in query:
            scope = {**scope, "user": await user_for_token(query["token"][0]), "auth_method": "query"}
        else:
            scope = {**scope, "auth_method": "session"}
        return await super().__call__(scope, receive, send)


class OriginGuard:
    """Refuses a handshake from a foreign ``Origin`` at once (HTTP 403), before authentication."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and not scope_origin_allowed(scope):
            return await WebsocketDenier()(scope, receive, send)
        return await self.app(scope, receive, send)


def websocket_auth_stack(app):
    return OriginGuard(AuthMiddlewareStack(TokenAuthMiddleware(app)))
