"""Who is calling: bearer tokens on ``/mcp``, and the Django user of a request.

Over HTTP an MCP client sends ``Authorization: Bearer <token>``, either

* an OAuth access token this service issued for ``/mcp`` (oauth.py: audience
  and expiry checked, scopes narrow the user's tools), or
* the user's DRF API token, the same key the REST API and the WebSockets take
  (scripts; no scopes: the user's own access rule alone).

``TokenBackend`` turns either into the SDK's ``AuthenticatedUser`` (its
``access_token.subject`` is the Django user's pk, which the SDK also uses to
keep one user off another's session). A request without a valid one is
answered by ``RequireToken``: 401 with ``WWW-Authenticate: Bearer
resource_metadata="<origin>/.well-known/oauth-protected-resource/mcp"``, the
start of OAuth discovery (RFC 9728 §5.1).

Over stdio there is no request: the process acts as the user it was started
for (``manage.py mcp_stdio --user NAME``)::

    server = build_server(user_for=fixed_user(user))      # stdio
    server = build_server(user_for=request_user)          # HTTP
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.context import ServerRequestContext
from starlette.authentication import AuthCredentials, AuthenticationBackend
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from .catalog import ALL_TOOLS_SCOPE
from .oauth import PROTECTED_RESOURCE_METADATA_PATH, resource_url, verify_access_token

logger = logging.getLogger(__name__)

# client_id of a verified DRF token: this service's own API tokens.
CLIENT_ID = "drf-token"
# client_id of a request that carried no token, in conformance mode (anonymous.py).
ANONYMOUS = "anonymous"

UserResolver = Callable[[ServerRequestContext], Awaitable[Any]]


class NotAuthenticated(Exception):
    """A request reached a handler without a verified user (should not happen behind the middleware)."""


def origin(conn: HTTPConnection) -> str:
    """``scheme://host[:port]`` as the client addressed this server (Host already checked by HostGuard)."""
    return f"{conn.url.scheme}://{conn.url.netloc}"


@database_sync_to_async
def _drf_token(key: str) -> AccessToken | None:
    from rest_framework.authtoken.models import Token

    token = Token.objects.select_related("user").filter(key=key).first()
    if token is None or not token.user.is_active:
        return None
    return AccessToken(token=key, client_id=CLIENT_ID, scopes=[], subject=str(token.user.pk))


class TokenBackend(AuthenticationBackend):
    """``Authorization: Bearer`` as an OAuth access token for this ``/mcp``, else a DRF token."""

    async def authenticate(self, conn: HTTPConnection):
        kind, _, raw = conn.headers.get("authorization", "").partition(" ")
        raw = raw.strip()
        if kind.lower() != "bearer" or not raw:
            return None
        token = await database_sync_to_async(verify_access_token)(raw, resource=resource_url(origin(conn)))
        if token is None:
            token = await _drf_token(raw)
        if token is None:
            return None
        return AuthCredentials(token.scopes), AuthenticatedUser(token)


class RequireToken:
    """401 with the RFC 9728 pointer for a request ``TokenBackend`` did not authenticate."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if isinstance(scope.get("user"), AuthenticatedUser):
            return await self.app(scope, receive, send)
        conn = HTTPConnection(scope)
        sent_one = "authorization" in conn.headers
        error, description = (
            ("invalid_token", "The access token is invalid, expired or not for this server.")
            if sent_one
            else ("invalid_request", "Authentication required.")
        )
        challenge = (
            f'Bearer error="{error}", error_description="{description}", '
            f'resource_metadata="{origin(conn)}{PROTECTED_RESOURCE_METADATA_PATH}", '
            f'scope="{ALL_TOOLS_SCOPE}"'
        )
        body = json.dumps({"error": error, "error_description": description}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", challenge.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


@database_sync_to_async
def _active_user(pk: str):
    return get_user_model().objects.filter(pk=pk, is_active=True).first()


def _token(ctx: ServerRequestContext) -> AccessToken | None:
    scope_user = ctx.request.scope.get("user") if ctx.request is not None else None
    return scope_user.access_token if isinstance(scope_user, AuthenticatedUser) else None


async def request_user(ctx: ServerRequestContext):
    """The Django user whose token authenticated the HTTP request carrying this message."""
    token = _token(ctx)
    if token is None or not token.subject:
        raise NotAuthenticated("This request carries no verified token.")
    user = await _active_user(token.subject)
    if user is None:
        raise NotAuthenticated("The token's user is gone or inactive.")
    return user


def request_scopes(ctx: ServerRequestContext) -> frozenset[str] | None:
    """The OAuth scopes of the request's token; None for a DRF token, an anonymous caller or stdio."""
    token = _token(ctx)
    if token is None or token.client_id in (CLIENT_ID, ANONYMOUS):
        return None
    return frozenset(token.scopes)


def fixed_user(user) -> UserResolver:
    """Every message acts as ``user`` (stdio: the process was started for them)."""

    async def resolve(ctx: ServerRequestContext):
        return user

    return resolve
