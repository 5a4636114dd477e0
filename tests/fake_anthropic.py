"""A real local HTTP server that speaks enough of the Anthropic Messages API.

Why a real server: the anthropic SDK 2.x is built on ``httpx2`` (a fork of
httpx), so httpx mocking libraries never see its traffic. Pointing the real SDK
at a real socket (``base_url``) tests everything the SDK does: SSE parsing,
status-to-exception mapping, timeouts, connection handling.

What it serves: ``POST /v1/messages``. With ``"stream": true`` the answer is a
``text/event-stream`` of named events, each ``event: <type>`` + ``data: <json>``
+ a blank line::

    message_start        {"message": {..., "usage": {"input_tokens": N}}}
    content_block_start  {"index": 0, "content_block": {"type": "text", "text": ""}}
    content_block_delta  {"index": 0, "delta": {"type": "text_delta", "text": "w0 "}}   (one per piece)
    content_block_stop   {"index": 0}
    message_delta        {"delta": {"stop_reason": "end_turn", ...}, "usage": {"output_tokens": pieces}}
    message_stop         {}

The body is sent with HTTP/1.1 chunked encoding, so closing the socket mid-body
is a *protocol error* for the client (an incomplete chunked read), exactly like
a dropped connection to the real API; with HTTP/1.0 an early close would look
like a normal end of body.

Each request consumes one *behavior* (a dict) from the script, then the
default applies. Keys (all optional):

    tokens       int, default 20: pieces "w0 ", "w1 ", ...
    text         exact text instead, split into pieces of ``piece_chars`` (default 4)
    delay_ms     pause between pieces (default 0)
    status       answer with this HTTP error status and an Anthropic-shaped JSON error
    error_type   the error's type ("overloaded_error", "rate_limit_error", ...)
    error_message  the error's message text (default: "Fake <error_type> ...")
    retry_after  value of the ``retry-after`` header on error responses
    error_after  send ``event: error`` after that many pieces
    garbled_after  send a delta event whose data is not JSON after that many pieces
    drop_after   close the TCP connection abruptly after that many pieces
    stall_after  send nothing for ``stall_s`` seconds (default 30) after that many pieces
    stall_s      see stall_after
    hold_after   after that many pieces, hold the stream until ``release()`` (``POST
                 /_control/release``) opens the gate for every held stream; a ``ping`` event
                 (as the real API sends) every ``ping_s`` (default 1) keeps the client's read
                 timeout from firing meanwhile. ``requests`` shows ``holding`` while it waits and
                 the ``pings`` sent;
                 ``reset()`` closes the gate again
    ping_s       see hold_after
    stamp        true: each streamed piece is "<index>:<time_ns> " instead, its index and the
                 moment it was written (CLOCK_REALTIME), so a benchmark client on the same
                 machine can time every token end to end (``bench/``); ``tokens`` sets the count

Two ways to use it:

* in-process: ``FakeAnthropic().start()``; ``.url``, ``.set_script()``,
  ``.set_default()``, ``.release()``, ``.requests``, ``.wait_for_requests()``, ``.stop()``;
  or the pytest fixture ``fake_anthropic`` below (a fresh server per test).
* subprocess: ``python -m tests.fake_anthropic --port N`` (0 = a free port; the
  first stdout line is ``listening on http://127.0.0.1:PORT``), controlled over
  HTTP: ``POST /_control/script`` (JSON list), ``POST /_control/default``
  (JSON object), ``GET /_control/requests[?wait=N&timeout=S]``,
  ``POST /_control/release``, ``POST /_control/reset``.
"""

from __future__ import annotations

import argparse
import json
import logging
import select
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

logger = logging.getLogger(__name__)

Behavior = dict[str, Any]

# The error type the real API uses for each status, when a behavior names none.
DEFAULT_ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


class ClientGone(Exception):
    """The client closed its end while we were still streaming."""


class ServerDropped(Exception):
    """We closed the connection on purpose (``drop_after``)."""


def behavior_pieces(behavior: Behavior) -> list[str]:
    """The text pieces a behavior streams: ``text`` in chunks, else ``tokens`` words."""
    if "text" in behavior:
        text = str(behavior["text"])
        size = max(1, int(behavior.get("piece_chars", 4)))
        return [text[i : i + size] for i in range(0, len(text), size)]
    return [f"w{i} " for i in range(int(behavior.get("tokens", 20)))]


def prompt_words(body: dict[str, Any]) -> int:
    """Input tokens, approximated as the words of every message's text."""
    words = 0
    for message in body.get("messages", []):
        content = message.get("content", "")
        if isinstance(content, str):
            words += len(content.split())
        else:
            words += sum(len(str(block.get("text", "")).split()) for block in content)
    return words


def error_body(status: int, error_type: str | None, message: str | None = None) -> dict[str, Any]:
    """An error body shaped like the real API's."""
    kind = error_type or DEFAULT_ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {
        "type": "error",
        "error": {"type": kind, "message": message or f"Fake {kind} (HTTP {status})."},
        "request_id": f"req_fake_{uuid.uuid4().hex[:12]}",
    }


class FakeAnthropic:
    """The in-process server: script behaviors, read back what it received."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, api_key: str | None = None) -> None:
        # ``api_key`` None accepts any key; a string also rejects other keys with 401.
        self.host = host
        self.port = port
        self.api_key = api_key
        self._lock = threading.Condition()
        self._script: list[Behavior] = []
        self._default: Behavior = {}
        self._requests: list[dict[str, Any]] = []
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._released = threading.Event()  # the gate of ``hold_after``
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> FakeAnthropic:
        server = _Server((self.host, self.port), _Handler)
        server.daemon_threads = True
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        self.port = server.server_address[1]
        self._stopping.clear()
        # A short poll interval keeps stop() (which waits for the loop to notice) fast.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-anthropic", daemon=True
        )
        self._thread.start()
        logger.debug("fake Anthropic listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving and cut every open connection (wakes stalled handlers)."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            _shutdown_quietly(conn)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeAnthropic:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- control -----------------------------------------------------------

    def set_script(self, behaviors: list[Behavior]) -> None:
        with self._lock:
            self._script = [dict(b) for b in behaviors]

    def set_default(self, behavior: Behavior) -> None:
        with self._lock:
            self._default = dict(behavior)

    def reset(self) -> None:
        with self._lock:
            self._script, self._default, self._requests = [], {}, []
            self._released.clear()

    def release(self) -> None:
        """Let every stream held by ``hold_after`` (now or later) go on."""
        self._released.set()

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Snapshots of the recorded requests, oldest first."""
        with self._lock:
            return [dict(r) for r in self._requests]

    def wait_for_requests(self, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Block until ``count`` requests have been fully handled.

        The server notices a client's disconnect on its own thread, so a test
        must wait for that handler to finish before reading ``disconnected_early``.
        """
        with self._lock:
            finished = self._lock.wait_for(lambda: sum(r["done"] for r in self._requests) >= count, timeout=timeout)
            if not finished:
                raise TimeoutError(f"fake Anthropic: {count} finished request(s) not seen in {timeout}s")
            return [dict(r) for r in self._requests]

    # -- used by the handler -------------------------------------------------

    def _next_behavior(self) -> Behavior:
        with self._lock:
            return self._script.pop(0) if self._script else dict(self._default)

    def _record(self, entry: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._requests.append(entry)
        return entry

    def _update(self, entry: dict[str, Any], **changes: Any) -> None:
        with self._lock:
            entry.update(changes)
            self._lock.notify_all()

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            (self._connections.add if add else self._connections.discard)(conn)


class _Server(ThreadingHTTPServer):
    # socketserver's default listen backlog is 5: a benchmark opening hundreds
    # of streams at once would see refused SYNs retried a second later.
    request_queue_size = 1024


def _shutdown_quietly(conn: socket.socket) -> None:
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by the peer or by the handler


class _Handler(BaseHTTPRequestHandler):
    """One connection; HTTP/1.1 so responses can be chunked and kept alive."""

    protocol_version = "HTTP/1.1"
    server_version = "FakeAnthropic/1.0"

    @property
    def fake(self) -> FakeAnthropic:
        return self.server.fake  # type: ignore[attr-defined,no-any-return]

    def setup(self) -> None:
        super().setup()
        self.fake._track(self.connection, add=True)

    def finish(self) -> None:
        self.fake._track(self.connection, add=False)
        try:
            super().finish()
        except OSError:
            pass  # the client (or drop_after) already closed the socket

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("fake Anthropic: " + format, *args)

    # -- routing -------------------------------------------------------------

    def do_GET(self) -> None:
        parsed = urlparse(self.path)
        if parsed.path == "/_control/requests":
            query = parse_qs(parsed.query)
            wait = int(query.get("wait", ["0"])[0])
            timeout = float(query.get("timeout", ["10"])[0])
            try:
                data = self.fake.wait_for_requests(wait, timeout) if wait else self.fake.requests
            except TimeoutError as exc:
                self._send_json(408, {"error": str(exc)})
                return
            self._send_json(200, data)
        else:
            self._send_json(404, error_body(404, None, f"No route {parsed.path}."))

    def do_POST(self) -> None:
        path = urlparse(self.path).path
        body = self._read_json()
        if path == "/_control/script":
            self.fake.set_script(list(body or []))
        elif path == "/_control/default":
            self.fake.set_default(dict(body or {}))
        elif path == "/_control/reset":
            self.fake.reset()
        elif path == "/_control/release":
            self.fake.release()
        elif path == "/v1/messages":
            self._messages(body or {})
            return
        else:
            self._send_json(404, error_body(404, None, f"No route {path}."))
            return
        self._send_json(200, {"ok": True})

    # -- /v1/messages ----------------------------------------------------------

    def _messages(self, body: dict[str, Any]) -> None:
        behavior = self.fake._next_behavior()
        entry = self.fake._record(
            {
                "body": body,
                "model": body.get("model"),
                "auth": self._auth_scheme(),
                "behavior": behavior,
                "pieces_sent": 0,
                "disconnected_early": False,
                "done": False,
            }
        )
        try:
            self._answer(body, behavior, entry)
        except ClientGone:
            self.fake._update(entry, disconnected_early=True)
            self.close_connection = True
        except ServerDropped:
            self.close_connection = True
        finally:
            self.fake._update(entry, done=True)

    def _answer(self, body: dict[str, Any], behavior: Behavior, entry: dict[str, Any]) -> None:
        if not self._authorized():
            self._send_json(401, error_body(401, None, "invalid x-api-key"))
        elif "status" in behavior:
            self._send_error(behavior)
        elif body.get("stream"):
            self._stream(body, behavior, entry)
        else:
            self._send_json(200, self._message_json(body, behavior_pieces(behavior)))

    def _auth_scheme(self) -> str | None:
        if self.headers.get("x-api-key"):
            return "x-api-key"
        if (self.headers.get("authorization") or "").lower().startswith("bearer "):
            return "bearer"
        return None

    def _authorized(self) -> bool:
        key = self.headers.get("x-api-key") or ""
        bearer = self.headers.get("authorization") or ""
        if bearer.lower().startswith("bearer "):
            key = key or bearer[7:].strip()
        if not key:
            return False
        return self.fake.api_key is None or key == self.fake.api_key

    def _send_error(self, behavior: Behavior) -> None:
        status = int(behavior["status"])
        headers = {}
        if behavior.get("retry_after") is not None:
            headers["retry-after"] = str(behavior["retry_after"])
        body = error_body(status, behavior.get("error_type"), behavior.get("error_message"))
        self._send_json(status, body, headers)

    def _message_json(self, body: dict[str, Any], pieces: list[str]) -> dict[str, Any]:
        return {
            "id": f"msg_fake_{uuid.uuid4().hex[:12]}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", "unknown"),
            "content": [{"type": "text", "text": "".join(pieces)}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": prompt_words(body), "output_tokens": len(pieces)},
        }

    # -- streaming -----------------------------------------------------------

    def _stream(self, body: dict[str, Any], behavior: Behavior, entry: dict[str, Any]) -> None:
        pieces = behavior_pieces(behavior)
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("request-id", f"req_fake_{uuid.uuid4().hex[:12]}")
        self.end_headers()
        start = self._message_json(body, [])
        start["content"], start["stop_reason"] = [], None
        start["usage"]["output_tokens"] = 1  # the real API reports 1 here too
        self._event("message_start", {"type": "message_start", "message": start})
        self._event(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        )
        if not self._stream_pieces(pieces, behavior, entry):
            return  # an error event ended the stream
        self._event("content_block_stop", {"type": "content_block_stop", "index": 0})
        self._event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": len(pieces)},
            },
        )
        self._event("message_stop", {"type": "message_stop"})
        self._write_chunk(b"")  # the zero-length chunk ends the body

    def _stream_pieces(self, pieces: list[str], behavior: Behavior, entry: dict[str, Any]) -> bool:
        """Send the deltas, applying the fault behaviors; False if an error event ended it."""
        delay = float(behavior.get("delay_ms", 0)) / 1000
        for index in range(len(pieces) + 1):
            if index == behavior.get("error_after"):
                self._send_error_event(behavior)
                return False
            if index == behavior.get("garbled_after"):  # a delta whose data is not JSON
                self._write_chunk(b'event: content_block_delta\ndata: {"type": "content_blo\n\n')
                self._write_chunk(b"")
                return False
            if index == behavior.get("drop_after"):
                self.wfile.flush()
                _shutdown_quietly(self.connection)
                raise ServerDropped()
            if index == behavior.get("stall_after"):
                self._pause(float(behavior.get("stall_s", 30)))
            if index == behavior.get("hold_after"):
                self._hold(float(behavior.get("ping_s", 1)), entry)
            if index == len(pieces):
                return True
            if index and delay:
                self._pause(delay)
            text = f"{index}:{time.time_ns()} " if behavior.get("stamp") else pieces[index]
            self._event(
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
            )
            self.fake._update(entry, pieces_sent=index + 1)
        return True

    def _send_error_event(self, behavior: Behavior) -> None:
        kind = behavior.get("error_type") or "overloaded_error"
        message = behavior.get("error_message") or f"Fake mid-stream {kind}."
        self._event("error", {"type": "error", "error": {"type": kind, "message": message}})
        self._write_chunk(b"")

    def _hold(self, ping_s: float, entry: dict[str, Any]) -> None:
        """Wait for the gate; a ping every ``ping_s`` (a client that hung up shows as the ping fails)."""
        self.fake._update(entry, holding=True, pings=0)
        while not self.fake._released.wait(ping_s):
            if self.fake._stopping.is_set():
                raise ServerDropped()
            self._event("ping", {"type": "ping"})
            self.fake._update(entry, pings=entry["pings"] + 1)
        self.fake._update(entry, holding=False)

    def _pause(self, seconds: float) -> None:
        """Wait ``seconds`` unless the client hangs up (or the server stops) first.

        Watching the socket, rather than sleeping, is how the server learns
        that a client gave up (closed its stream or timed out) while idle.
        """
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self.fake._stopping.is_set():
                raise ServerDropped()  # the server is shutting down, not the client
            readable, _, _ = select.select([self.connection], [], [], min(left, 0.05))
            if readable and self._peer_closed():
                raise ClientGone()

    def _peer_closed(self) -> bool:
        try:
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except (ConnectionResetError, BrokenPipeError):
            return True
        except BlockingIOError:
            return False

    def _event(self, name: str, data: dict[str, Any]) -> None:
        payload = f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
        self._write_chunk(payload)

    def _write_chunk(self, payload: bytes) -> None:
        """One HTTP chunk, flushed at once so the client sees it immediately."""
        try:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(payload), payload))
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise ClientGone() from exc

    # -- plumbing ------------------------------------------------------------

    def _read_json(self) -> Any:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw) if raw else None
        except json.JSONDecodeError:
            return None

    def _send_json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(data).encode()
        try:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise ClientGone() from exc


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropic]:
    """A started fake server, fresh for each test (function scope).

    A server per test costs about a millisecond and guarantees that no script,
    default or recorded request leaks from one test into the next.
    """
    server = FakeAnthropic().start()
    try:
        yield server
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake Anthropic Messages API server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--api-key", default=None, help="accept only this key (default: any)")
    args = parser.parse_args(argv)
    server = FakeAnthropic(host=args.host, port=args.port, api_key=args.api_key).start()
    print(f"listening on {server.url}", flush=True)
    try:
        threading.Event().wait()  # serve until interrupted
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
