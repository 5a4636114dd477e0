"""The real HTTP server the test Gantz file's http tools call (``${TOOL_HTTP_URL}``).

    /echo        what arrived: {"method", "path", "query", "args", "headers": {"x-tag"}, "body"}
    /items       {"items": [{"name": "first"}, {"name": "second"}]}
    /status/N    answers with status N and the body "status N"
    /auth        200 {"authorized": true} if the bearer token is fixture.TOKEN, else 401

One instance serves a whole test session from a thread of the test process
(``running_target``); the production stack's workers reach it over loopback.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from tests.tools.fixture import TOKEN

ITEMS = {"items": [{"name": "first"}, {"name": "second"}]}


class _Handler(BaseHTTPRequestHandler):
    def handle_any(self) -> None:
        url = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8", "replace")
        if url.path == "/echo":
            self.answer(
                200,
                {
                    "method": self.command,
                    "path": url.path,
                    "query": url.query,
                    "args": {k: v[0] for k, v in parse_qs(url.query).items()},
                    "headers": {"x-tag": self.headers.get("X-Tag")},
                    "body": body,
                },
            )
        elif url.path == "/items":
            self.answer(200, ITEMS)
        elif url.path.startswith("/status/"):
            code = int(url.path.rsplit("/", 1)[1])
            self.answer(code, f"status {code}")
        elif url.path == "/auth":
            authorized = self.headers.get("Authorization") == f"Bearer {TOKEN}"
            self.answer(200 if authorized else 401, {"authorized": authorized})
        else:
            self.answer(404, "no such path")

    do_GET = do_POST = do_PUT = do_DELETE = handle_any

    def answer(self, status: int, payload: object) -> None:
        text = payload if isinstance(payload, str) else json.dumps(payload)
        data = text.encode()
        self.send_response(status)
        self.send_header(
            "Content-Type", "text/plain; charset=utf-8" if isinstance(payload, str) else "application/json"
        )
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def running_target() -> Iterator[str]:
    """Serve on a free port of 127.0.0.1 from a thread; yields the base URL (no trailing slash)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True, name="tool-http-target"
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
