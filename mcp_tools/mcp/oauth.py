"""OAuth 2.1 for MCP: django-oauth-toolkit issues the tokens, ``/mcp`` accepts them.

The MCP authorization spec (2026-07-28) asks a protected MCP server for
discovery and audience-bound tokens; django-oauth-toolkit (DOT) is the
authorization server, configured in ``config/settings.py`` (``OAUTH2_PROVIDER``)::

    GET /.well-known/oauth-protected-resource/mcp   RFC 9728: resource, authorization_servers, scopes
    GET /.well-known/oauth-authorization-server     RFC 8414: endpoints, S256, CIMD supported
    GET /o/authorize/?...&code_challenge=...&resource=https://host/mcp   login + consent (Django session)
    POST /o/token/                                  code + code_verifier -> access token bound to /mcp
    POST /mcp   Authorization: Bearer <token>       verified here: not expired, user active, audience /mcp

Clients register by Client ID Metadata Document (their ``client_id`` is an
https URL DOT fetches, SSRF-hardened); an admin can also register an
application by hand. A token must name this ``/mcp`` as its resource (RFC
8707): a token issued for another server is refused, so is one naming no
resource.

**Scopes map onto the per-tool access rule** (``selectors.tool_allowed``,
groups and permission), they never widen it: ``tools`` lets the token use
every tool its user may use; ``tools:<name>`` one of them. A token's tools are
the user's tools ∩ its scopes (catalog.py), for ``tools/list`` and
``tools/call`` alike, and a task is visible to the token's user as any other
execution of theirs.
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit

from mcp.server.auth.provider import AccessToken
from oauth2_provider.models import get_access_token_model
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.scopes import BaseScopes

from mcp_tools.models import Tool

from .catalog import ALL_TOOLS_SCOPE

RESOURCE_PATH = "/mcp"
PROTECTED_RESOURCE_METADATA_PATH = "/.well-known/oauth-protected-resource" + RESOURCE_PATH


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


class RedirectRules(OAuth2Validator):
    """DOT's validator, with MCP's redirect rule: https, or http only back to this machine (RFC 8252).

    ``http`` must stay among DOT's allowed schemes for native clients (Claude
    Code, the Inspector) listening on a loopback port; anywhere else an http
    redirect would hand the code to whoever watches the network.
    """

    def validate_redirect_uri(self, client_id, redirect_uri, request, *args, **kwargs):
        parts = urlsplit(redirect_uri)
        if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS):
            return False
        return super().validate_redirect_uri(client_id, redirect_uri, request, *args, **kwargs)


class ToolScopes(BaseScopes):
    """``tools`` plus one ``tools:<name>`` per active tool (the default asked for is ``tools``)."""

    def get_all_scopes(self) -> dict[str, str]:
        scopes = {ALL_TOOLS_SCOPE: "Use the tools your account may use"}
        for name in Tool.objects.filter(is_active=True).values_list("name", flat=True):
            scopes[f"tools:{name}"] = f"Use the tool {name}"
        return scopes

    def get_available_scopes(self, application=None, request=None, *args, **kwargs) -> list[str]:
        return list(self.get_all_scopes())

    def get_default_scopes(self, application=None, request=None, *args, **kwargs) -> list[str]:
        return [ALL_TOOLS_SCOPE]


def resource_url(origin: str) -> str:
    """This deployment's MCP resource identifier, e.g. ``https://tools.example.com/mcp``."""
    return origin.rstrip("/") + RESOURCE_PATH


def verify_access_token(raw: str, *, resource: str) -> AccessToken | None:
    """The DOT token ``raw`` as the SDK's AccessToken, if it is valid for ``resource``; else None.

    Runs in a thread (ORM). ``subject`` is the Django user's pk, as for DRF tokens.
    """
    checksum = hashlib.sha256(raw.encode("utf-8")).hexdigest()
    token = (
        get_access_token_model().objects.select_related("user", "application").filter(token_checksum=checksum).first()
    )
    if token is None or token.is_expired() or token.user is None or not token.user.is_active:
        return None
    if not token.resource or not token.allows_audience(resource):
        return None
    return AccessToken(
        token=raw,
        client_id=token.application.client_id if token.application else "",
        scopes=sorted(token.scopes),
        subject=str(token.user_id),
        resource=resource,
        expires_at=int(token.expires.timestamp()) if token.expires else None,
    )
