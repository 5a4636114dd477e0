"""Helpers for the Gantz tests: a Gantz file written to a temporary folder, an
``emit`` that records what it is given, and a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import textwrap
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mcp_tools.gantz import GantzTool, load_gantz_file


@pytest.fixture
def gantz_tool(tmp_path: Path) -> Callable[..., GantzTool]:
    """``gantz_tool(yaml_text)``: the only (or the named) tool of a file in ``tmp_path``."""

    def make(text: str, name: str | None = None) -> GantzTool:
        path = tmp_path / "gantz.yaml"
        path.write_text(textwrap.dedent(text))
        tools = {tool.name: tool for tool in load_gantz_file(path).tools}
        return tools[name] if name else next(iter(tools.values()))

    return make


class Recorder:
    """An ``emit`` that keeps every piece; ``on_piece`` may react to each (or raise)."""

    def __init__(self, on_piece: Callable[[str], None] | None = None) -> None:
        self.pieces: list[str] = []
        self.on_piece = on_piece

    def __call__(self, text: str) -> None:
        self.pieces.append(text)
        if self.on_piece is not None:
            self.on_piece(text)

    @property
    def text(self) -> str:
        return "".join(self.pieces)


@pytest.fixture
def emit() -> Recorder:
    return Recorder()


# --- A real HTTP server ----------------------------------------------------------


@dataclass
class Call:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


Route = Reply | Callable[[BaseHTTPRequestHandler], None]


class _Handler(BaseHTTPRequestHandler):
    server: HttpServer

    def handle_any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.server.calls.append(Call(self.command, self.path, dict(self.headers), self.rfile.read(length)))
        route = self.server.routes.get(self.path.split("?")[0], Reply(404, b"not found"))
        try:
            route(self) if callable(route) else self.reply(route)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading: expected in cap and cancel tests

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = handle_any

    def reply(self, reply: Reply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class HttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes: dict[str, Route] = {}
        self.calls: list[Call] = []
        self.connections = 0
        self.release = threading.Event()  # set at teardown: frees handlers that wait

    def verify_request(self, request: object, client_address: object) -> bool:
        self.connections += 1
        return True

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


@pytest.fixture
def http_server() -> Iterator[HttpServer]:
    server = HttpServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
        thread.join()
