"""Token-less MCP access exists only in the conformance mode, and only over loopback."""

from __future__ import annotations

import anyio
import pytest
from django.core.exceptions import ImproperlyConfigured
from starlette.requests import HTTPConnection

from mcp_tools.mcp.anonymous import AnonymousOrBearer, check_allowed


class NoToken:
    async def authenticate(self, conn):
        return None


def authenticate(server_host: str, client_host: str, headers=()):
    scope = {
        "type": "http",
        "server": (server_host, 8000),
        "client": (client_host, 50000),
        "headers": [(name.encode(), value.encode()) for name, value in headers],
    }
    return anyio.run(AnonymousOrBearer(NoToken()).authenticate, HTTPConnection(scope))


def test_the_normal_settings_refuse_to_start_the_endpoint_with_anonymous_access(settings):
    settings.MCP_ANONYMOUS_USER = "conformance"
    with pytest.raises(ImproperlyConfigured, match="settings_conformance"):
        check_allowed()


@pytest.mark.django_db(transaction=True)
def test_anonymous_access_needs_loopback_on_both_ends_and_no_authorization_header(settings):
    settings.MCP_ANONYMOUS_USER = "conformance"
    _, user = authenticate("127.0.0.1", "::1")
    assert user.access_token.client_id == "anonymous" and user.access_token.subject
    assert authenticate("10.1.2.3", "127.0.0.1") is None
    assert authenticate("127.0.0.1", "192.0.2.7") is None
    assert authenticate("127.0.0.1", "127.0.0.1", [("authorization", "Bearer nope")]) is None


def test_without_the_setting_a_request_without_a_token_is_not_anonymous(settings):
    assert not getattr(settings, "MCP_ANONYMOUS_USER", None)
    assert authenticate("127.0.0.1", "127.0.0.1") is None
