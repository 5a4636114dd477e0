"""Authentication, Origin and routing of the WebSocket endpoints (PROTOCOL.md)."""

from __future__ import annotations

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from tests.conftest import HOST, ORIGIN, receive, send

pytestmark = pytest.mark.django_db(transaction=True)


async def open_raw(path: str = "/ws/executions/", headers: list | None = None) -> WebsocketCommunicator:
    from config.asgi import application

    return WebsocketCommunicator(application, path, headers=headers if headers is not None else [ORIGIN, HOST])


async def assert_closed_with(comm: WebsocketCommunicator, code: int) -> None:
    connected, _ = await comm.connect(timeout=10)
    assert connected  # accepted first, so the code survives daphne
    output = await comm.receive_output(timeout=5)
    assert output == {"type": "websocket.close", "code": code}
    await comm.disconnect()


async def assert_ping_pong(comm: WebsocketCommunicator) -> None:
    await send(comm, {"type": "ping", "request_id": "p"})
    assert await receive(comm) == {"type": "pong", "request_id": "p"}


async def test_header_token_authenticates(tools, alice, connect):
    await assert_ping_pong(await connect(alice))


async def test_query_token_authenticates(alice):
    comm = WebsocketCommunicator(
        (await open_raw()).application, f"/ws/executions/?token={alice.auth_token.key}", headers=[ORIGIN, HOST]
    )
    assert (await comm.connect(timeout=10))[0]
    await assert_ping_pong(comm)
    await comm.disconnect()


async def test_session_cookie_authenticates(alice):
    client = Client()
    await client.aforce_login(alice)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    comm = await open_raw(headers=[ORIGIN, HOST, (b"cookie", cookie.encode())])
    assert (await comm.connect(timeout=10))[0]
    await assert_ping_pong(comm)
    await comm.disconnect()


async def test_no_credentials_is_closed_with_4401(db):
    await assert_closed_with(await open_raw(), 4401)


async def test_unknown_token_is_closed_with_4401(db):
    await assert_closed_with(await open_raw(headers=[ORIGIN, HOST, (b"authorization", b"Token nope")]), 4401)


async def test_invalid_header_token_is_not_rescued_by_a_valid_query_token(alice):
    from config.asgi import application

    comm = WebsocketCommunicator(
        application,
        f"/ws/executions/?token={alice.auth_token.key}",
        headers=[ORIGIN, HOST, (b"authorization", b"Token wrong")],
    )
    await assert_closed_with(comm, 4401)


async def test_monitor_refuses_non_staff_with_4403(alice):
    await assert_closed_with(
        await open_raw("/ws/monitor/", [ORIGIN, HOST, (b"authorization", f"Token {alice.auth_token.key}".encode())]),
        4403,
    )


async def test_monitor_refuses_anonymous_with_4401(db):
    await assert_closed_with(await open_raw("/ws/monitor/"), 4401)


async def test_unknown_path_is_refused_at_the_handshake(alice):
    comm = await open_raw(
        "/ws/nothing-here/", [ORIGIN, HOST, (b"authorization", f"Token {alice.auth_token.key}".encode())]
    )
    connected, _ = await comm.connect(timeout=10)
    assert not connected


async def test_foreign_origin_is_refused(alice):
    comm = await open_raw(
        headers=[
            (b"origin", b"https://evil.example"),
            HOST,
            (b"authorization", f"Token {alice.auth_token.key}".encode()),
        ]
    )
    connected, _ = await comm.connect(timeout=10)
    assert not connected


async def test_missing_origin_is_allowed_for_scripts(alice):
    comm = await open_raw(headers=[(b"authorization", f"Token {alice.auth_token.key}".encode())])
    assert (await comm.connect(timeout=10))[0]
    await assert_ping_pong(comm)
    await comm.disconnect()
