"""The page's HTTP side: login required, the history blob, the safety headers."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from mcp_tools.web import HISTORY_LIMIT
from tests.conftest import run_now

pytestmark = pytest.mark.django_db(transaction=True)


def history_blob(html: str) -> list[dict]:
    match = re.search(r'<script id="history-data" type="application/json">(.*?)</script>', html, re.S)
    assert match, "no history-data blob in the page"
    return json.loads(match[1])


def logged_in(user) -> Client:
    client = Client()
    assert client.login(username=user.username, password="pw-" + user.username)
    return client


def report(user, data) -> str:
    return str(run_now(user, "generate_report", {"data": data}).pk)


def test_anonymous_visitor_is_sent_to_the_login_page():
    response = Client().get("/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/"


def test_login_page_logs_in_and_returns_to_the_page(alice):
    client = Client()
    page = client.get("/accounts/login/?next=/")
    assert page.status_code == 200 and b'name="csrfmiddlewaretoken"' in page.content
    response = client.post("/accounts/login/", {"username": "alice", "password": "pw-alice", "next": "/"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200


def test_wrong_password_shows_an_error(alice):
    response = Client().post("/accounts/login/", {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert b"didn't match" in response.content


def test_page_loads_its_modules_and_socket_path_with_a_strict_content_policy(alice):
    response = logged_in(alice).get("/")
    html = response.content.decode()
    assert '<script type="module" src="/static/mcp_tools/app.js"></script>' in html
    config = json.loads(re.search(r'<script id="mcp-config" type="application/json">(.*?)</script>', html)[1])
    assert config == {"ws_path": "/ws/executions/", "login_url": "/accounts/login/"}
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "connect-src 'self' ws://testserver wss://testserver" in policy
    assert 'action="/accounts/logout/"' in html and 'method="post"' in html


async def asgi_get(path: str) -> tuple[int, dict[bytes, bytes], bytes]:
    """GET ``path`` from config.asgi's application; static files arrive streamed, in several messages."""
    from asgiref.testing import ApplicationCommunicator

    from config.asgi import application

    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"localhost")],
        "scheme": "http",
        "server": ("localhost", 80),
        "client": ("127.0.0.1", 5000),
    }
    communicator = ApplicationCommunicator(application, scope)
    await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
    start = await communicator.receive_output(10)
    body = b""
    while True:
        message = await communicator.receive_output(10)
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    await communicator.wait(10)
    return start["status"], {key.lower(): value for key, value in start["headers"]}, body


async def test_the_asgi_app_serves_the_page_modules_without_a_build_step():
    for name, kind in (
        ("app.js", b"javascript"),
        ("connection.js", b"javascript"),
        ("schema-form.js", b"javascript"),
        ("execution-view.js", b"javascript"),
        ("markdown.js", b"javascript"),
        ("app.css", b"css"),
    ):
        status, headers, body = await asgi_get(f"/static/mcp_tools/{name}")
        assert status == 200, name
        assert kind in headers[b"content-type"] and body, name


def test_history_holds_only_own_executions_newest_first(tools, alice, bob, staff):
    mine = [report(alice, {"n": i}) for i in range(3)]
    report(bob, {"other": True})
    for client, expected in ((logged_in(alice), mine[::-1]), (logged_in(staff), [])):
        history = history_blob(client.get("/").content.decode())
        assert [entry["execution_id"] for entry in history] == expected
    entry = history_blob(logged_in(alice).get("/").content.decode())[0]
    assert entry["tool"] == "generate_report" and entry["status"] == "completed"
    assert entry["label"] == '{"data":{"n":2}}' and entry["cached"] is False
    assert isinstance(entry["duration_ms"], int)


def test_history_is_capped_at_the_newest_fifty(tools, alice, settings):
    settings.MCP_CONFIG = {**settings.MCP_CONFIG, "RATE_LIMIT_PER_MINUTE": 1000}
    ids = [report(alice, {"n": i}) for i in range(HISTORY_LIMIT + 3)]
    history = history_blob(logged_in(alice).get("/").content.decode())
    assert [entry["execution_id"] for entry in history] == ids[::-1][:HISTORY_LIMIT]


def test_history_labels_cannot_break_out_of_the_json_blob(tools, alice):
    report(alice, {"x": "</script><script>alert(1)</script>"})
    html = logged_in(alice).get("/").content.decode()
    assert "<script>alert(1)" not in html
    assert history_blob(html)[0]["label"] == '{"data":{"x":"</script><script>alert(1)</script>"}}'


def test_logout_is_a_post(alice):
    client = logged_in(alice)
    assert client.get("/accounts/logout/").status_code == 405
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert client.get("/").status_code == 302
