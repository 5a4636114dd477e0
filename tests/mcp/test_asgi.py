"""Allowed hosts for ``/mcp``: the SDK's DNS-rebinding settings and the host
guard, both derived from ``settings.ALLOWED_HOSTS`` with Django's rules."""

from __future__ import annotations

from mcp_tools.mcp.asgi import HostGuard, allowed_hosts, transport_security


async def guarded_status(hosts: list[str], headers: dict[str, str]) -> int:
    """The status HostGuard answers with (200: passed through to the app)."""
    sent: list[dict] = []

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/mcp",
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
    }
    await HostGuard(app, hosts)(scope, receive, send)
    return sent[0]["status"]


def test_exact_allowed_hosts_become_the_sdks_host_and_origin_lists_on_any_port():
    security = transport_security(["localhost", "api.example.com"])
    assert security.enable_dns_rebinding_protection
    assert set(security.allowed_hosts) == {"localhost", "localhost:*", "api.example.com", "api.example.com:*"}
    assert "https://api.example.com:*" in security.allowed_origins
    assert "http://localhost" in security.allowed_origins


def test_wildcard_allowed_hosts_leave_the_decision_to_the_guard():
    assert not transport_security([".example.com"]).enable_dns_rebinding_protection
    assert not transport_security(["*"]).enable_dns_rebinding_protection


async def test_guard_applies_djangos_host_patterns():
    hosts = [".example.com", "127.0.0.1"]
    assert await guarded_status(hosts, {"host": "api.example.com:8443"}) == 200
    assert await guarded_status(hosts, {"host": "example.com"}) == 200
    assert await guarded_status(hosts, {"host": "127.0.0.1:8000"}) == 200
    assert await guarded_status(hosts, {"host": "example.com.evil.net"}) == 421
    assert await guarded_status(hosts, {}) == 421
    assert await guarded_status(["*"], {"host": "anything.test"}) == 200


async def test_guard_refuses_a_browser_origin_outside_the_allowed_hosts():
    hosts = ["localhost"]
    assert await guarded_status(hosts, {"host": "localhost:8000", "origin": "http://localhost:3000"}) == 200
    assert await guarded_status(hosts, {"host": "localhost:8000", "origin": "https://evil.example"}) == 403
    assert await guarded_status(hosts, {"host": "localhost:8000", "origin": "null"}) == 403


def test_debug_with_no_allowed_hosts_means_local_names_as_in_django(settings):
    settings.ALLOWED_HOSTS = []
    settings.DEBUG = True
    assert allowed_hosts() == [".localhost", "127.0.0.1", "[::1]"]
    settings.DEBUG = False
    assert allowed_hosts() == []
