"""Who is calling: DRF tokens as MCP bearer tokens, and the user of a request.

Over HTTP an MCP client sends the same API token the REST API and the
WebSockets accept, as ``Authorization: Bearer <key>``. The SDK's
``BearerAuthBackend`` asks ``DRFTokenVerifier`` about the key; an unknown key
or an inactive user is no token at all, and ``RequireAuthMiddleware`` answers
401. The verified ``AccessToken`` names the Django user in ``subject``, which
is also what the SDK compares to keep one user off another's session.

Over stdio there is no request: the process acts as the user it was started
for (``manage.py mcp_stdio --user NAME``)::

    server = build_server(user_for=fixed_user(user))      # stdio
    server = build_server(user_for=request_user)          # HTTP
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.context import ServerRequestContext

logger = logging.getLogger(__name__)

# client_id of every verified token: they are all this service's own API tokens.
CLIENT_ID = "drf-token"
# client_id of a request that carried no token, in conformance mode (anonymous.py).
ANONYMOUS = "anonymous"

UserResolver = Callable[[ServerRequestContext], Awaitable[Any]]


class NotAuthenticated(Exception):
    """A request reached a handler without a verified user (should not happen behind the middleware)."""


@database_sync_to_async
def _active_user_for_key(key: str):
    from rest_framework.authtoken.models import Token

    token = Token.objects.select_related("user").filter(key=key).first()
    return token.user if token is not None and token.user.is_active else None


class DRFTokenVerifier(TokenVerifier):
    """The SDK's token check, answered by ``rest_framework.authtoken``."""

    async def verify_token(self, token: str) -> AccessToken | None:
        user = await _active_user_for_key(token.strip())
        if user is None:
            return None
        return AccessToken(token=token.strip(), client_id=CLIENT_ID, scopes=[], subject=str(user.pk))


@database_sync_to_async
def _active_user(pk: str):
    return get_user_model().objects.filter(pk=pk, is_active=True).first()


async def request_user(ctx: ServerRequestContext):
    """The Django user whose token authenticated the HTTP request carrying this message."""
    scope_user = ctx.request.scope.get("user") if ctx.request is not None else None
    if not isinstance(scope_user, AuthenticatedUser) or not scope_user.access_token.subject:
        raise NotAuthenticated("This request carries no verified token.")
    user = await _active_user(scope_user.access_token.subject)
    if user is None:
        raise NotAuthenticated("The token's user is gone or inactive.")
    return user


def request_scopes(ctx: ServerRequestContext) -> frozenset[str] | None:
    """The OAuth scopes of the request's token; None for a DRF token, an anonymous caller or stdio."""
    scope_user = ctx.request.scope.get("user") if ctx.request is not None else None
    if not isinstance(scope_user, AuthenticatedUser) or scope_user.access_token.client_id in (CLIENT_ID, ANONYMOUS):
        return None
    return frozenset(scope_user.access_token.scopes)


def fixed_user(user) -> UserResolver:
    """Every message acts as ``user`` (stdio: the process was started for them)."""

    async def resolve(ctx: ServerRequestContext):
        return user

    return resolve
