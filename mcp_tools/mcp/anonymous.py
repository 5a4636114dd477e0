"""Token-less MCP access for the conformance suite: ``settings.MCP_ANONYMOUS_USER``.

Only ``config.settings_conformance`` sets it. There, a request to ``/mcp``
without an ``Authorization`` header acts as that (local, created on demand)
user — if it reached this server on a loopback address from a loopback
address; anything else still needs a token. ``check_allowed`` refuses to
start the endpoint with the setting anywhere the ``conformance`` app is not
installed, so it cannot leak into a deployment by a copied settings line.
"""

from __future__ import annotations

import ipaddress

from channels.db import database_sync_to_async
from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from starlette.authentication import AuthCredentials, AuthenticationBackend
from starlette.requests import HTTPConnection

from .auth import ANONYMOUS


def anonymous_username() -> str | None:
    return getattr(settings, "MCP_ANONYMOUS_USER", None) or None


def check_allowed() -> None:
    if anonymous_username() and not apps.is_installed("conformance"):
        raise ImproperlyConfigured(
            "MCP_ANONYMOUS_USER is only for config.settings_conformance (the conformance "
            "suite's local server); remove it, MCP clients must send a token."
        )


def _loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return address == "localhost"


@database_sync_to_async
def _anonymous_user_pk(username: str) -> int:
    user, _ = get_user_model().objects.get_or_create(username=username)
    return user.pk


class AnonymousOrBearer(AuthenticationBackend):
    """``inner`` (the bearer check) first; without any Authorization header, the anonymous user on loopback."""

    def __init__(self, inner: AuthenticationBackend) -> None:
        self.inner = inner

    async def authenticate(self, conn: HTTPConnection):
        username = anonymous_username()
        if not username or "authorization" in conn.headers:
            return await self.inner.authenticate(conn)
        server, client = conn.scope.get("server") or (None, None), conn.scope.get("client") or (None, None)
        if not (_loopback(server[0]) and _loopback(client[0])):
            return await self.inner.authenticate(conn)
        token = AccessToken(token="", client_id=ANONYMOUS, scopes=[], subject=str(await _anonymous_user_pk(username)))
        return AuthCredentials([]), AuthenticatedUser(token)
