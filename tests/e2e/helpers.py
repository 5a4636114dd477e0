"""Helpers for end-to-end tests: a real WebSocket client and a page to fetch."""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from websockets.sync.client import ClientConnection, connect

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


def ws_connect(ws_url: str, token: str | None = None, *, path: str = "/ws/executions/",
               headers: dict | None = None) -> ClientConnection:
    all_headers = dict(headers or {})
    if token:
        all_headers["Authorization"] = f"Token {token}"
    return connect(ws_url + path, additional_headers=all_headers, open_timeout=10, max_size=2**22)


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
