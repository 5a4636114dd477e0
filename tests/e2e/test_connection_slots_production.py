"""Through a real daphne: connections ended in every way a client can end them give their slot back.

A daphne of its own (the stack's database and Redis) with a limit of five
connections per user and a short idle close. Fifty connections of one user
end by the client's close, an oversized frame (4009: daphne refuses 1009 from
an application, so before the fix the connection died with 1011 and kept its
slot), a refusal past the limit (4429), the idle close (4408), a TCP
connection dropped without a close frame, and a client vanishing mid-stream.
Then the user opens five connections again and each answers.
"""

from __future__ import annotations

import itertools
import socket
import sys

import pytest
from websockets.exceptions import ConnectionClosed

from tests.e2e.helpers import recv, send, ws_connect
from tests.stack import STARTUP_TIMEOUT_S, free_port, http_ok, wait_until

pytestmark = [pytest.mark.production, pytest.mark.django_db(transaction=True)]

LIMIT = 5
CONNECTIONS = 50


@pytest.fixture
def strict_daphne(stack):
    port = free_port()
    env = {
        **stack.env,
        "MCP_WS_MAX_CONNECTIONS_PER_USER": str(LIMIT),
        "MCP_WS_IDLE_TIMEOUT_S": "0.5",
        "MCP_DELIVERY_POLL_S": "0.2",
    }
    daphne = stack.spawn(
        "daphne-slots",
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
        env=env,
    )
    try:
        wait_until(
            lambda: http_ok(f"http://127.0.0.1:{port}/admin/login/") or daphne.popen.poll() is not None,
            timeout=STARTUP_TIMEOUT_S,
            what="daphne",
        )
        assert daphne.popen.poll() is None, daphne.log()[-3000:]
        yield f"ws://127.0.0.1:{port}"
    finally:
        daphne.stop()


def close_code(ws) -> int:
    try:
        while True:
            ws.recv(timeout=10)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else 1006


def works(url: str, token: str) -> None:
    with ws_connect(url, token) as ws:
        send(ws, {"type": "ping", "request_id": "p"})
        assert recv(ws) == {"type": "pong", "request_id": "p"}


def client_closes(url, token) -> str:
    works(url, token)
    return "client close"


def oversized_frame(url, token) -> str:
    with ws_connect(url, token) as ws:
        ws.send("x" * 70_000)
        assert recv(ws)["code"] == "message_too_large"
        assert close_code(ws) == 4009
    return "4009"


def refused_past_the_limit(url, token) -> str:
    held = [ws_connect(url, token) for _ in range(LIMIT)]
    for ws in held:  # each one answered: all five hold a slot now
        send(ws, {"type": "ping"})
        recv(ws)
    with ws_connect(url, token) as extra:
        assert recv(extra)["code"] == "rate_limited"
        assert close_code(extra) == 4429
    for ws in held:
        ws.close()
    return "4429"


def idle_close(url, token) -> str:
    with ws_connect(url, token) as ws:
        assert close_code(ws) == 4408
    return "4408"


def tcp_dropped(url, token) -> str:
    ws = ws_connect(url, token)
    send(ws, {"type": "ping"})
    recv(ws)
    ws.socket.shutdown(socket.SHUT_RDWR)  # no close frame: the connection just ends
    ws.socket.close()
    return "tcp dropped"


def vanishes_mid_stream(url, token, stack) -> str:
    stack.anthropic.set_default({"tokens": 300, "delay_ms": 10})
    ws = ws_connect(url, token)
    send(ws, {"type": "execute", "tool": "generate_report", "parameters": {"data": {"slots": 1}}, "use_cache": False})
    while recv(ws)["type"] != "execution.delta":
        pass
    ws.socket.shutdown(socket.SHUT_RDWR)
    ws.socket.close()
    return "gone mid-stream"


def test_fifty_connections_ended_every_way_then_every_slot_is_free(stack, strict_daphne, tools, alice):
    token = alice.auth_token.key
    endings = [
        client_closes,
        oversized_frame,
        refused_past_the_limit,
        idle_close,
        tcp_dropped,
        lambda url, tok: vanishes_mid_stream(url, tok, stack),
    ]
    seen: set[str] = set()
    ended = 0
    for ending in itertools.cycle(endings):
        if ended >= CONNECTIONS:
            break
        how = ending(strict_daphne, token)
        seen.add(how)
        ended += LIMIT + 1 if how == "4429" else 1
    assert seen == {"client close", "4009", "4429", "4408", "tcp dropped", "gone mid-stream"}

    def all_slots_free() -> bool:
        held = []
        try:
            for _ in range(LIMIT):
                ws = ws_connect(strict_daphne, token)
                held.append(ws)
                send(ws, {"type": "ping", "request_id": "p"})
                if recv(ws) != {"type": "pong", "request_id": "p"}:
                    return False
            return True
        except (ConnectionClosed, KeyError):
            return False
        finally:
            for ws in held:
                ws.close()

    # A dropped TCP connection is noticed by daphne when it next reads or writes: allow it that moment.
    wait_until(all_slots_free, timeout=30, interval=0.5, what="every connection slot to be free again")
