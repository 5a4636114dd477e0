"""The Origin check on the embedded default: /ws/executions/, /ws/monitor/ and the event stream.

A browser on another origin of the same host (another port or scheme) gets
the user's session cookie too; only the page's own origin (scheme, host and
port) and ``CSRF_TRUSTED_ORIGINS`` may use it. Scripts without ``Origin``
keep working. Driven through ``config.asgi.application`` itself.
"""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.test import Client

from tests.api.conftest import REPORT_PARAMETERS, parse_sse
from tests.conftest import receive, receive_until_terminal, run_now, send, streamed_text

pytestmark = pytest.mark.django_db(transaction=True)

REFUSED = {
    "same host, another port": "http://localhost:3000",
    "same host, another scheme": "https://localhost",
    "null (sandboxed page, file:)": "null",
    "a subdomain": "http://evil.localhost",
    "another site": "https://evil.example",
    "not an origin": "http://",
}


async def session_cookie(user) -> str:
    client = Client()
    await client.aforce_login(user)
    return f"{django_settings.SESSION_COOKIE_NAME}={client.cookies[django_settings.SESSION_COOKIE_NAME].value}"


async def handshake(
    path: str, *, cookie: str, origin: str | None, host: str = "localhost", extra: list | None = None
) -> tuple[bool, WebsocketCommunicator]:
    from config.asgi import application

    headers = [(b"host", host.encode()), (b"cookie", cookie.encode())] + (extra or [])
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    comm = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await comm.connect(timeout=10)
    return connected, comm


async def assert_refused(path: str, **kwargs) -> None:
    connected, comm = await handshake(path, **kwargs)
    await comm.disconnect()
    assert not connected, kwargs


async def assert_runs_a_report(comm: WebsocketCommunicator) -> None:
    await send(comm, {"type": "execute", "tool": "generate_report", "parameters": REPORT_PARAMETERS})
    assert (await receive(comm))["type"] == "execution.accepted"
    events = await receive_until_terminal(comm)
    assert events[-1]["type"] == "execution.completed"
    assert streamed_text(events) == events[-1]["result"]["report"]


@pytest.mark.parametrize("origin", REFUSED.values(), ids=REFUSED.keys())
@pytest.mark.parametrize("path", ["/ws/executions/", "/ws/monitor/"])
async def test_a_foreign_origin_is_refused_at_the_handshake_even_with_a_session(tools, operator, path, origin):
    await assert_refused(path, cookie=await session_cookie(operator), origin=origin, host="localhost")


async def test_another_port_of_the_same_host_is_foreign(tools, alice):
    await assert_refused(
        "/ws/executions/", cookie=await session_cookie(alice), origin="http://localhost:8001", host="localhost:8000"
    )


async def test_all_hosts_allowed_opens_hosts_not_origins(tools, alice, settings):
    settings.ALLOWED_HOSTS = ["*"]
    cookie = await session_cookie(alice)
    for origin in ("https://evil.example", "http://localhost:3000", "null"):
        await assert_refused("/ws/executions/", cookie=cookie, origin=origin, host="localhost:8000")


async def test_own_origin_trusted_origins_and_no_origin_are_accepted_and_a_run_works(tools, alice, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://app.example.com", "https://*.tools.example.com"]
    cookie = await session_cookie(alice)
    for host, origin in [
        ("localhost", "http://localhost"),
        ("localhost:8000", "http://localhost:8000"),
        ("localhost:80", "http://localhost"),
        ("localhost", None),
        ("localhost", "https://app.example.com"),
        ("localhost", "https://eu.tools.example.com"),
    ]:
        connected, comm = await handshake("/ws/executions/", cookie=cookie, origin=origin, host=host)
        try:
            assert connected, (host, origin)
            await send(comm, {"type": "ping", "request_id": "p"})
            assert await receive(comm) == {"type": "pong", "request_id": "p"}
        finally:
            await comm.disconnect()
    await assert_refused("/ws/executions/", cookie=cookie, origin="http://app.example.com")  # trusted as https only
    connected, comm = await handshake("/ws/executions/", cookie=cookie, origin="http://localhost")
    try:
        assert connected
        await assert_runs_a_report(comm)
    finally:
        await comm.disconnect()


async def test_the_proxys_scheme_header_decides_the_own_origins_scheme_when_configured(tools, alice, settings):
    cookie = await session_cookie(alice)
    forwarded = [(b"x-forwarded-proto", b"https")]
    # Not configured: the header is anyone's to send, and the connection's own scheme counts.
    await assert_refused("/ws/executions/", cookie=cookie, origin="https://localhost", extra=forwarded)
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    connected, comm = await handshake("/ws/executions/", cookie=cookie, origin="https://localhost", extra=forwarded)
    await comm.disconnect()
    assert connected
    await assert_refused("/ws/executions/", cookie=cookie, origin="http://localhost", extra=forwarded)


async def test_scripts_with_a_token_and_no_origin_keep_working(tools, alice):
    from config.asgi import application

    comm = WebsocketCommunicator(
        application, "/ws/executions/", headers=[(b"authorization", f"Token {alice.auth_token.key}".encode())]
    )
    try:
        assert (await comm.connect(timeout=10))[0]
        await assert_runs_a_report(comm)
    finally:
        await comm.disconnect()


# --- The event stream ------------------------------------------------------------------------------


async def finished_execution(user):
    return await sync_to_async(run_now)(user, "generate_report", REPORT_PARAMETERS)


@pytest.mark.parametrize("origin", REFUSED.values(), ids=REFUSED.keys())
async def test_event_stream_with_a_session_cookie_refuses_a_foreign_origin(tools, alice, asgi_http, origin):
    execution = await finished_execution(alice)
    response = await asgi_http.get(
        f"/api/executions/{execution.pk}/events/", headers={"Cookie": await session_cookie(alice), "Origin": origin}
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


async def test_event_stream_answers_own_origin_no_origin_and_tokens_from_anywhere(tools, alice, asgi_http):
    execution = await finished_execution(alice)
    url = f"/api/executions/{execution.pk}/events/"
    cookie = await session_cookie(alice)
    for headers in (
        {"Cookie": cookie, "Origin": "http://localhost"},
        {"Cookie": cookie},
        {"Authorization": f"Token {alice.auth_token.key}", "Origin": "https://elsewhere.example"},
    ):
        response = await asgi_http.get(url, headers=headers)
        assert response.status_code == 200, headers
        events, _ = parse_sse(response.text)
        assert events[-1]["data"]["type"] == "execution.completed"
