"""Helpers for end-to-end tests: the embedded server, a real WebSocket client and a page to fetch."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from websockets.sync.client import ClientConnection, connect

from tests.stack import ROOT, free_port, http_ok, wait_until

TERMINAL = {"execution.completed", "execution.failed", "execution.cancelled"}

ARTICLE_HTML = """<!doctype html><html><head><title>Tides</title></head><body>
<nav><a href="/">Home</a> | <a href="/about">About</a></nav>
<article><h1>How tides work</h1>
<p>Tides are the regular rise and fall of the sea caused by the gravity of the Moon and the Sun.
The Moon's pull creates two bulges of water on opposite sides of the Earth.</p>
<p>As the Earth turns, a coast passes through both bulges, so most places see two high tides a day.
Spring tides happen when Sun and Moon line up; neap tides when they are at right angles.</p>
</article><footer>Copyright nobody</footer></body></html>"""


def _handler(status: int, body: bytes) -> type[BaseHTTPRequestHandler]:
    class PageHandler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(status)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    return PageHandler


@contextmanager
def page_server(*, status: int = 200, html: str = ARTICLE_HTML, path: str = "/article") -> Iterator[str]:
    """Serve ``html`` with ``status`` at every path on 127.0.0.1; yields the URL of ``path``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(status, html.encode()))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}{path}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class EmbeddedServer:
    http_url: str
    ws_url: str
    token: str
    log_path: Path
    process: subprocess.Popen
    env: dict[str, str]  # the server's environment: run manage.py commands against its database with it

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


# The shell's production settings and the test run's own variables stay out: this is `./dev run`.
NOT_INHERITED = (
    "REDIS_URL",
    "DATABASE_URL",
    "SECRET_KEY",
    "ANTHROPIC_API_KEY",
    "PYTEST_VERSION",
    "PYTEST_CURRENT_TEST",
)


@contextmanager
def embedded_serve(data_dir: Path, **settings: str) -> Iterator[EmbeddedServer]:
    """``manage.py serve`` on a free port with no settings but ``DATA_DIR`` (and ``settings``); stopped on exit.

    The server's output (start-up lines, logs) is in ``server.output()``, also after it stopped."""
    env = {key: value for key, value in os.environ.items() if key not in NOT_INHERITED}
    env.update(DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1", **settings)
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = data_dir / "serve.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        match = wait_until(
            lambda: re.search(r"token: (\w+)", log_path.read_text()) or process.poll() is not None,
            timeout=60,
            what="manage.py serve",
        )
        assert process.poll() is None, log_path.read_text()
        wait_until(
            lambda: http_ok(f"http://127.0.0.1:{port}/admin/login/") or process.poll() is not None,
            timeout=60,
            what="daphne listening",
        )
        yield EmbeddedServer(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", match[1], log_path, process, env)
    finally:
        process.terminate()
        process.wait(20)


def ws_connect(
    ws_url: str, token: str | None = None, *, path: str = "/ws/executions/", headers: dict | None = None
) -> ClientConnection:
    all_headers = dict(headers or {})
    if token:
        all_headers["Authorization"] = f"Token {token}"
    # legacy=True: a connection the caller closes (or uses in a with), not websockets 17's retrying iterator.
    return connect(ws_url + path, additional_headers=all_headers, open_timeout=10, max_size=2**22, legacy=True)


def send(ws: ClientConnection, message: dict) -> None:
    ws.send(json.dumps(message))


def recv(ws: ClientConnection, timeout: float = 20) -> dict:
    return json.loads(ws.recv(timeout=timeout))


def recv_until_terminal(ws: ClientConnection, timeout: float = 30) -> list[dict]:
    messages = []
    while True:
        message = recv(ws, timeout)
        messages.append(message)
        if message["type"] in TERMINAL:
            return messages


def recv_until(ws: ClientConnection, predicate, timeout: float = 30) -> list[dict]:
    messages = []
    while True:
        message = recv(ws, timeout)
        messages.append(message)
        if predicate(message):
            return messages
