"""The Origin check through real daphne (production topology), with a real session cookie.

The handshake a browser on another origin would make — same host on another
port or scheme, ``null``, a subdomain, another site — is refused with HTTP
403; the page's own origin, a trusted origin and a script without ``Origin``
connect, and a report then runs. A second daphne with ``ALLOWED_HOSTS=*``,
``CSRF_TRUSTED_ORIGINS`` and ``SECURE_PROXY_SSL_HEADER`` checks the settings.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from django.conf import settings
from django.test import Client
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.api.conftest import REPORT_PARAMETERS
from tests.e2e.helpers import recv, recv_until_terminal, send
from tests.security.conftest import another_daphne

pytestmark = [pytest.mark.production, pytest.mark.django_db(transaction=True)]


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def handshake(url: str, *, cookie: str, origin: str | None, extra: dict | None = None):
    headers = {"Cookie": cookie, **(extra or {})}
    return connect(url, origin=origin, additional_headers=headers, open_timeout=10)


def assert_refused(url: str, **kwargs) -> None:
    with pytest.raises(InvalidStatus) as refused:
        handshake(url, **kwargs).close()
    assert refused.value.response.status_code == 403, kwargs


def assert_runs_a_report(url: str, **kwargs) -> None:
    with handshake(url, **kwargs) as ws:
        send(ws, {"type": "execute", "tool": "generate_report", "parameters": REPORT_PARAMETERS})
        assert recv(ws)["type"] == "execution.accepted"
        assert recv_until_terminal(ws)[-1]["type"] == "execution.completed"


def test_foreign_origins_are_refused_and_the_own_origin_runs_through_daphne(stack, tools, alice):
    port = stack.ws_url.rsplit(":", 1)[1]
    cookie = session_cookie(alice)
    for path in ("/ws/executions/", "/ws/monitor/"):
        url = stack.ws_url + path
        for origin in (
            f"http://127.0.0.1:{int(port) + 1}",
            f"https://127.0.0.1:{port}",
            "null",
            "https://evil.example",
        ):
            assert_refused(url, cookie=cookie, origin=origin)
        assert_refused(f"ws://localhost:{port}{path}", cookie=cookie, origin=f"http://evil.localhost:{port}")
    url = stack.ws_url + "/ws/executions/"
    assert_runs_a_report(url, cookie=cookie, origin=f"http://127.0.0.1:{port}")
    assert_runs_a_report(
        url,
        cookie=f"{settings.SESSION_COOKIE_NAME}=none",
        origin=None,
        extra={"Authorization": f"Token {alice.auth_token.key}"},
    )


def test_event_stream_with_the_session_cookie_refuses_a_foreign_origin_through_daphne(stack, tools, alice):
    cookie = session_cookie(alice)
    ran = httpx.post(
        f"{stack.http_url}/api/tools/generate_report/execute/",
        timeout=30,
        headers={"Authorization": f"Token {alice.auth_token.key}"},
        json={"parameters": REPORT_PARAMETERS},
    )
    url = f"{stack.http_url}/api/executions/{ran.json()['id']}/events/"
    port = stack.http_url.rsplit(":", 1)[1]
    foreign = httpx.get(url, headers={"Cookie": cookie, "Origin": f"http://127.0.0.1:{int(port) + 1}"}, timeout=30)
    assert foreign.status_code == 403 and foreign.json()["error"]["code"] == "permission_denied"
    own = httpx.get(url, headers={"Cookie": cookie, "Origin": stack.http_url}, timeout=30)
    assert own.status_code == 200 and "event: execution.completed" in own.text


@pytest.fixture
def open_daphne(stack) -> Iterator[str]:
    """Another daphne on the same deployment: every Host allowed, one trusted origin, behind a TLS proxy."""
    with another_daphne(
        stack,
        "daphne-open",
        ALLOWED_HOSTS="*",
        CSRF_TRUSTED_ORIGINS="https://app.example.com",
        SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto",
    ) as port:
        yield f"ws://127.0.0.1:{port}"


def test_all_hosts_allowed_still_refuses_foreign_origins_and_trusts_the_configured_ones(open_daphne, tools, alice):
    url = open_daphne + "/ws/executions/"
    port = int(open_daphne.rsplit(":", 1)[1])
    cookie = session_cookie(alice)
    for origin in ("https://evil.example", f"http://127.0.0.1:{port + 1}", "null", "http://app.example.com"):
        assert_refused(url, cookie=cookie, origin=origin)
    # The proxy says the client spoke https: the own origin is https, and plain http is foreign.
    tls = {"X-Forwarded-Proto": "https"}
    assert_refused(url, cookie=cookie, origin=f"http://127.0.0.1:{port}", extra=tls)
    assert_runs_a_report(url, cookie=cookie, origin=f"https://127.0.0.1:{port}", extra=tls)
    assert_runs_a_report(url, cookie=cookie, origin="https://app.example.com")
