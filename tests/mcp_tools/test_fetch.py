"""fetch_page, fetch_page_async, guarded_request and extract_main_text against
a real HTTP server on 127.0.0.1.

Happy paths run with ``allow_private=True`` (the server is on loopback).
Blocking tests run with the default policy and prove that no connection was
made: the server counts accepted connections, and ``connect_attempts`` records
every ``socket.create_connection`` call httpx makes (the sync client; the
async tests rely on the server's count).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mcp_tools import fetch
from mcp_tools.errors import PermanentToolError, TransientToolError
from mcp_tools.fetch import (
    FetchedPage,
    extract_main_text,
    fetch_page,
    fetch_page_async,
    guarded_request,
)

ARTICLE_HTML = b"""<!DOCTYPE html>
<html><head><title>Tide pools</title>
<script>var tracker = "TRACKING-SCRIPT";</script>
<style>body { color: black; }</style></head>
<body>
<header><nav><ul><li><a href="/">Home</a></li><li><a href="/about">About us</a></li>
<li><a href="/subscribe">Subscribe to our newsletter</a></li></ul></nav></header>
<main><article>
<h1>Life in the tide pools</h1>
<p>Tide pools are rocky hollows that keep their seawater when the tide goes out.
They are home to anemones, sea stars and small fish that can survive hours of sun and waves.</p>
<p>Creatures in the pools must cope with changing temperature and salinity twice a day.
Many of them close up, cling to rock or hide under seaweed until the water returns.</p>
<p>Visiting at low tide is the best way to see them, but step only on bare rock
and put back any stone you turn over.</p>
</article></main>
<footer><p>Copyright 2026 Coastal Notes. All rights reserved.</p>
<a href="/privacy">Privacy policy</a></footer>
</body></html>
"""
HTML = "text/html; charset=utf-8"
PLAIN = "text/plain; charset=utf-8"


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = PLAIN
    headers: dict[str, str] = field(default_factory=dict)


Route = Reply | Callable[[BaseHTTPRequestHandler], None]


@dataclass
class Call:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class _Handler(BaseHTTPRequestHandler):
    server: TestServer

    def do_GET(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.server.calls.append(Call(self.command, self.path, dict(self.headers), self.rfile.read(length)))
        self.server.requests.append((self.path, self.headers.get("Host")))
        route = self.server.routes.get(self.path, Reply(404, b"not found"))
        try:
            route(self) if callable(route) else send(self, route)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading (byte cap, timeout): expected

    do_POST = do_PUT = do_GET

    def log_message(self, format: str, *args: object) -> None:
        pass


class TestServer(ThreadingHTTPServer):
    __test__ = False  # not a test class
    daemon_threads = True

    def __init__(self, host: str) -> None:
        super().__init__((host, 0), _Handler)
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.calls: list[Call] = []
        self.connections = 0
        self.release = threading.Event()  # set at teardown: frees stalled handlers

    @property
    def port(self) -> int:
        return self.server_address[1]

    def verify_request(self, request: object, client_address: object) -> bool:
        self.connections += 1
        return True

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


def send(handler: BaseHTTPRequestHandler, reply: Reply) -> None:
    handler.send_response(reply.status)
    handler.send_header("Content-Type", reply.content_type)
    handler.send_header("Content-Length", str(len(reply.body)))
    for name, value in reply.headers.items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(reply.body)


def _running_server(host: str) -> Iterator[TestServer]:
    server = TestServer(host)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def server() -> Iterator[TestServer]:
    yield from _running_server("127.0.0.1")


@pytest.fixture
def other_server() -> Iterator[TestServer]:
    """A second loopback server, standing in for an internal service."""
    yield from _running_server("127.0.0.2")


@pytest.fixture
def connect_attempts(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    attempts: list[tuple[str, int]] = []
    real_create_connection = socket.create_connection

    def recording_create_connection(address, *args, **kwargs):
        attempts.append(address)
        return real_create_connection(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", recording_create_connection)
    return attempts


def get(url: str, **options) -> FetchedPage:
    options = {"max_bytes": 1_000_000, "timeout_s": 5.0, "allow_private": True, **options}
    return fetch_page(url, **options)


def fetch_error(url: str, **options) -> PermanentToolError | TransientToolError:
    with pytest.raises((PermanentToolError, TransientToolError)) as caught:
        get(url, **options)
    return caught.value


# --- Happy paths ------------------------------------------------------------------


def test_html_page_yields_main_text_without_markup_or_boilerplate(server):
    server.routes["/article"] = Reply(body=ARTICLE_HTML, content_type=HTML)

    page = get(server.url("/article"))
    text = extract_main_text(page)

    assert (page.status_code, page.content_type, page.truncated) == (200, "text/html", False)
    assert page.url == page.final_url == server.url("/article")
    assert "Tide pools are rocky hollows" in text
    assert "put back any stone you turn over." in text
    for boilerplate in ("<", "About us", "Subscribe", "TRACKING-SCRIPT", "Privacy policy"):
        assert boilerplate not in text


def test_plain_text_page_is_returned_with_whitespace_normalised(server):
    server.routes["/notes.txt"] = Reply(body=b"  First   line\t here \n\n\n\nSecond line  \n")

    page = get(server.url("/notes.txt"))

    assert page.content_type == "text/plain"
    assert page.text == "  First   line\t here \n\n\n\nSecond line  \n"
    assert extract_main_text(page) == "First line here\n\nSecond line"


def test_body_is_decoded_with_the_declared_charset(server):
    server.routes["/latin1"] = Reply(
        body="café déjà vu".encode("latin-1"), content_type="text/plain; charset=iso-8859-1"
    )

    assert get(server.url("/latin1")).text == "café déjà vu"


def test_undecodable_bytes_are_replaced_not_fatal(server):
    server.routes["/broken"] = Reply(body=b"ok \xff\xfe end", content_type="text/plain")

    assert get(server.url("/broken")).text == "ok \ufffd\ufffd end"


@pytest.mark.parametrize("location", ["/article", "article", "ABSOLUTE"])
def test_redirect_is_followed_to_the_final_page(server, location):
    target = server.url("/article")
    server.routes["/old"] = Reply(301, headers={"Location": target if location == "ABSOLUTE" else location})
    server.routes["/article"] = Reply(body=b"moved here")

    page = get(server.url("/old"))

    assert (page.url, page.final_url, page.text) == (server.url("/old"), target, "moved here")


def test_redirect_chain_of_exactly_max_redirects_succeeds(server):
    for hop in range(3):
        server.routes[f"/hop{hop}"] = Reply(302, headers={"Location": f"/hop{hop + 1}"})
    server.routes["/hop3"] = Reply(body=b"arrived")

    assert get(server.url("/hop0"), max_redirects=3).text == "arrived"


def test_redirect_chain_longer_than_max_redirects_fails(server):
    for hop in range(10):
        server.routes[f"/hop{hop}"] = Reply(302, headers={"Location": f"/hop{hop + 1}"})

    error = fetch_error(server.url("/hop0"), max_redirects=3)

    assert isinstance(error, PermanentToolError)
    assert error.code == "too_many_redirects"
    assert [path for path, _host in server.requests] == ["/hop0", "/hop1", "/hop2", "/hop3"]


def test_byte_cap_truncates_the_body_and_keeps_what_was_read(server):
    server.routes["/big"] = Reply(body=b"a" * 2_000_000)

    page = get(server.url("/big"), max_bytes=1000)

    assert (page.text, page.truncated) == ("a" * 1000, True)


def test_body_exactly_at_the_cap_is_not_truncated(server):
    server.routes["/exact"] = Reply(body=b"b" * 1000)

    page = get(server.url("/exact"), max_bytes=1000)

    assert (len(page.text), page.truncated) == (1000, False)


# --- HTTP failures ------------------------------------------------------------------


def test_non_text_content_is_unsupported(server):
    server.routes["/logo.png"] = Reply(body=b"\x89PNG\r\n", content_type="image/png")

    error = fetch_error(server.url("/logo.png"))

    assert isinstance(error, PermanentToolError)
    assert error.code == "unsupported_content"
    assert "image/png" in error.message


def test_client_error_is_permanent_fetch_failed_naming_the_status(server):
    error = fetch_error(server.url("/missing"))

    assert isinstance(error, PermanentToolError)
    assert error.code == "fetch_failed"
    assert "404" in error.message


@pytest.mark.parametrize("status", [500, 503, 408, 429])
def test_server_errors_and_throttling_are_transient(server, status):
    server.routes["/busy"] = Reply(status, b"busy", headers={"Retry-After": "7"})

    error = fetch_error(server.url("/busy"))

    assert isinstance(error, TransientToolError)
    assert (error.code, error.retry_after) == ("fetch_unavailable", 7.0)
    assert str(status) in error.message


def test_slow_server_raises_fetch_timeout(server):
    def stall(handler: BaseHTTPRequestHandler) -> None:
        handler.server.release.wait(timeout=30)

    server.routes["/slow"] = stall

    error = fetch_error(server.url("/slow"), timeout_s=0.2)

    assert isinstance(error, TransientToolError)
    assert error.code == "fetch_timeout"


def test_server_dripping_bytes_cannot_outlast_the_total_timeout(server):
    def drip(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Content-Length", "1000000")
        handler.end_headers()
        while not handler.server.release.wait(timeout=0.02):  # one byte per 20 ms
            handler.wfile.write(b"x")
            handler.wfile.flush()

    server.routes["/drip"] = drip

    error = fetch_error(server.url("/drip"), timeout_s=0.3)

    assert isinstance(error, TransientToolError)
    assert error.code == "fetch_timeout"


def test_a_body_that_cannot_be_decoded_is_fetch_failed_not_a_crash(server):
    server.routes["/gz"] = Reply(body=b"not gzip at all", headers={"Content-Encoding": "gzip"})

    error = fetch_error(server.url("/gz"))

    assert (type(error), error.code) == (PermanentToolError, "fetch_failed")


def test_refused_connection_is_transient_fetch_unavailable():
    with socket.socket() as bound_not_listening:
        bound_not_listening.bind(("127.0.0.1", 0))
        port = bound_not_listening.getsockname()[1]

        error = fetch_error(f"http://127.0.0.1:{port}/")

    assert isinstance(error, TransientToolError)
    assert error.code == "fetch_unavailable"


def test_unknown_host_is_permanent_fetch_failed(connect_attempts):
    def no_such_name(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    error = fetch_error("http://nowhere.test/", resolver=no_such_name)

    assert isinstance(error, PermanentToolError)
    assert error.code == "fetch_failed"
    assert connect_attempts == []


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/file",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "http://",
        "http:///path",
        "not a url",
        "http://example.com:99999/",
    ],
)
def test_non_http_or_malformed_url_is_invalid(url, connect_attempts):
    error = fetch_error(url)

    assert isinstance(error, PermanentToolError)
    assert error.code == "invalid_url"
    assert connect_attempts == []


# --- SSRF blocking --------------------------------------------------------------------

BLOCKED_HOSTS = [
    "127.0.0.1",
    "localhost",
    "127.1",
    "0x7f.1",
    "2130706433",
    "10.0.0.1",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "224.0.0.1",
    "0.0.0.0",
    "[::1]",
    "[::ffff:127.0.0.1]",
    "[64:ff9b::7f00:1]",
    "[2002:7f00:1::]",
    "[fe80::1]",
    "[fd00:ec2::254]",
    "[::]",
    "[ff02::1]",
]


@pytest.mark.parametrize("host", BLOCKED_HOSTS)
def test_non_public_address_is_blocked_without_connecting(server, connect_attempts, host):
    server.routes["/article"] = Reply(body=b"internal secret")

    error = fetch_error(server.url("/article", host=host), allow_private=False)

    assert isinstance(error, PermanentToolError)
    assert error.code == "blocked_address"
    assert host.strip("[]") in error.message
    assert (server.connections, connect_attempts) == (0, [])


@pytest.mark.parametrize("host", ["0.0.0.0", "224.0.0.1", "169.254.169.254", "[fd00:ec2::254]"])
def test_unspecified_multicast_and_metadata_stay_blocked_when_private_is_allowed(connect_attempts, host):
    error = fetch_error(f"http://{host}/latest/meta-data/", allow_private=True)

    assert error.code == "blocked_address"
    assert connect_attempts == []


def test_host_is_blocked_if_any_resolved_address_is_private(connect_attempts):
    def mixed(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "10.0.0.1"]

    error = fetch_error("http://mixed.test/", resolver=mixed, allow_private=False)

    assert error.code == "blocked_address"
    assert connect_attempts == []


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "2606:4700::1111",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
        "2002:808:808::",
    ],
)
def test_public_addresses_and_wrapped_public_ipv4_are_allowed(address):
    assert fetch.is_address_allowed(ipaddress.ip_address(address))


def test_connection_goes_to_the_checked_address_not_a_second_lookup(server, connect_attempts):
    """DNS rebinding: the name resolves once; later answers cannot move the request."""
    server.routes["/article"] = Reply(body=b"pinned")
    lookups: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"] if len(lookups) == 1 else ["10.255.255.1"]

    page = get(server.url("/article", host="rebind.test"), resolver=rebinding)

    assert page.text == "pinned"
    assert lookups == ["rebind.test"]
    assert connect_attempts == [("127.0.0.1", server.port)]
    assert server.requests == [("/article", f"rebind.test:{server.port}")]


def test_https_request_keeps_the_hostname_for_sni(connect_attempts, monkeypatch):
    sent: list = []

    def capture(self, request, **kwargs):
        sent.append(request)
        raise fetch.httpx.ConnectError("stop here", request=request)

    monkeypatch.setattr(fetch.httpx.Client, "send", capture)

    fetch_error("https://pinned.test/a", resolver=lambda host, port: ["127.0.0.1"])

    (request,) = sent
    assert str(request.url) == "https://127.0.0.1/a"
    assert request.headers["Host"] == "pinned.test"
    assert request.extensions["sni_hostname"] == "pinned.test"


@pytest.mark.parametrize("target", ["http://internal.test:{port}/secret", "http://127.0.0.2:{port}/secret"])
def test_redirect_to_a_blocked_address_is_refused_at_the_hop(server, other_server, connect_attempts, target):
    only_the_public_server = ipaddress.ip_address("127.0.0.1")
    names = {"public.test": ["127.0.0.1"], "internal.test": ["127.0.0.2"]}
    other_server.routes["/secret"] = Reply(body=b"internal secret")
    server.routes["/go"] = Reply(302, headers={"Location": target.format(port=other_server.port)})

    error = fetch_error(
        server.url("/go", host="public.test"),
        resolver=lambda host, port: names[host],
        allow_private=lambda ip: ip == only_the_public_server,
    )

    assert error.code == "blocked_address"
    assert [path for path, _host in server.requests] == ["/go"]
    assert other_server.connections == 0
    assert connect_attempts == [("127.0.0.1", server.port)]


def test_redirect_to_a_non_http_scheme_is_refused(server):
    server.routes["/go"] = Reply(302, headers={"Location": "file:///etc/passwd"})

    assert fetch_error(server.url("/go")).code == "invalid_url"


# --- Extraction -------------------------------------------------------------------------


def page_of(text: str, content_type: str = "text/html") -> FetchedPage:
    return FetchedPage(
        url="http://example.test/",
        final_url="http://example.test/",
        status_code=200,
        content_type=content_type,
        text=text,
        truncated=False,
    )


def test_page_without_readable_text_raises_no_content():
    with pytest.raises(PermanentToolError) as caught:
        extract_main_text(page_of("<html><body><script>x()</script></body></html>"))

    assert caught.value.code == "no_content"


def test_blank_plain_text_raises_no_content():
    with pytest.raises(PermanentToolError) as caught:
        extract_main_text(page_of(" \n\t\n ", content_type="text/plain"))

    assert caught.value.code == "no_content"


def test_extraction_falls_back_to_the_page_text_when_no_main_text_is_found(monkeypatch):
    monkeypatch.setattr(fetch.trafilatura, "extract", lambda *args, **kwargs: None)

    text = extract_main_text(page_of("<html><body><div>Just  a\n line</div></body></html>"))

    assert text == "Just a line"


# --- The async fetch and the shared guard ---------------------------------------------


async def get_async(url: str, **options) -> FetchedPage:
    options = {"max_bytes": 1_000_000, "timeout_s": 5.0, "allow_private": True, **options}
    return await fetch_page_async(url, **options)


async def fetch_error_async(url: str, **options) -> PermanentToolError | TransientToolError:
    with pytest.raises((PermanentToolError, TransientToolError)) as caught:
        await get_async(url, **options)
    return caught.value


async def test_async_fetch_returns_what_the_sync_fetch_returns(server):
    server.routes["/article"] = Reply(body=ARTICLE_HTML, content_type=HTML)
    server.routes["/old"] = Reply(301, headers={"Location": "/article"})

    page = await get_async(server.url("/old"))

    assert page == get(server.url("/old"))
    assert page.final_url == server.url("/article")
    assert "Tide pools are rocky hollows" in extract_main_text(page)


async def test_async_byte_cap_truncates_and_keeps_what_was_read(server):
    server.routes["/big"] = Reply(body=b"a" * 2_000_000)

    page = await get_async(server.url("/big"), max_bytes=1000)

    assert (page.text, page.truncated) == ("a" * 1000, True)


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "localhost", "0x7f.1", "10.0.0.1", "169.254.169.254", "[::1]", "[::ffff:127.0.0.1]"]
)
async def test_async_non_public_address_is_blocked_without_connecting(server, host):
    server.routes["/article"] = Reply(body=b"internal secret")

    error = await fetch_error_async(server.url("/article", host=host), allow_private=False)

    assert error.code == "blocked_address"
    assert server.connections == 0


async def test_async_metadata_address_stays_blocked_when_private_is_allowed():
    error = await fetch_error_async("http://169.254.169.254/latest/meta-data/", allow_private=True)

    assert error.code == "blocked_address"


async def test_async_connection_goes_to_the_checked_address(server):
    server.routes["/article"] = Reply(body=b"pinned")
    lookups: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"] if len(lookups) == 1 else ["10.255.255.1"]

    page = await get_async(server.url("/article", host="rebind.test"), resolver=rebinding)

    assert (page.text, lookups) == ("pinned", ["rebind.test"])
    assert server.requests == [("/article", f"rebind.test:{server.port}")]


async def test_async_redirect_to_a_blocked_address_is_refused_at_the_hop(server, other_server):
    other_server.routes["/secret"] = Reply(body=b"internal secret")
    server.routes["/go"] = Reply(302, headers={"Location": other_server.url("/secret", "127.0.0.2")})
    only_the_first_server = ipaddress.ip_address("127.0.0.1")

    error = await fetch_error_async(server.url("/go"), allow_private=lambda ip: ip == only_the_first_server)

    assert error.code == "blocked_address"
    assert other_server.connections == 0


async def test_async_redirect_chain_longer_than_max_redirects_fails(server):
    for hop in range(10):
        server.routes[f"/hop{hop}"] = Reply(302, headers={"Location": f"/hop{hop + 1}"})

    error = await fetch_error_async(server.url("/hop0"), max_redirects=2)

    assert error.code == "too_many_redirects"
    assert [path for path, _host in server.requests] == ["/hop0", "/hop1", "/hop2"]


async def test_async_errors_are_those_of_the_sync_fetch(server):
    server.routes["/busy"] = Reply(503, b"busy", headers={"Retry-After": "7"})
    server.routes["/logo.png"] = Reply(body=b"\x89PNG", content_type="image/png")

    busy = await fetch_error_async(server.url("/busy"))
    logo = await fetch_error_async(server.url("/logo.png"))
    missing = await fetch_error_async(server.url("/missing"))

    assert (type(busy), busy.code, busy.retry_after) == (TransientToolError, "fetch_unavailable", 7.0)
    assert (logo.code, missing.code) == ("unsupported_content", "fetch_failed")


async def test_async_server_dripping_bytes_cannot_outlast_the_total_timeout(server):
    def drip(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Content-Length", "1000000")
        handler.end_headers()
        while not handler.server.release.wait(timeout=0.02):
            handler.wfile.write(b"x")
            handler.wfile.flush()

    server.routes["/drip"] = drip

    error = await fetch_error_async(server.url("/drip"), timeout_s=0.3)

    assert (type(error), error.code) == (TransientToolError, "fetch_timeout")


async def test_async_body_that_cannot_be_decoded_is_fetch_failed(server):
    server.routes["/gz"] = Reply(body=b"not gzip at all", headers={"Content-Encoding": "gzip"})

    error = await fetch_error_async(server.url("/gz"))

    assert (type(error), error.code) == (PermanentToolError, "fetch_failed")


async def test_async_refused_connection_is_transient_fetch_unavailable():
    with socket.socket() as bound_not_listening:
        bound_not_listening.bind(("127.0.0.1", 0))
        port = bound_not_listening.getsockname()[1]

        error = await fetch_error_async(f"http://127.0.0.1:{port}/")

    assert (type(error), error.code) == (TransientToolError, "fetch_unavailable")


async def test_async_fetch_ignores_proxy_settings_from_the_environment(server, monkeypatch):
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # the discard port: nothing answers
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    server.routes["/direct"] = Reply(body=b"direct")

    assert (await get_async(server.url("/direct"))).text == "direct"


async def test_guarded_request_sends_method_headers_and_body_and_yields_any_status(server):
    server.routes["/items"] = Reply(422, b'{"error": "bad"}', content_type="application/json")

    async with guarded_request(
        "POST",
        server.url("/items"),
        timeout_s=5,
        allow_private=True,
        headers={"X-Token": "t", "Host": "evil.test"},
        content=b'{"a": 1}',
    ) as landed:
        body = await landed.response.aread()

    assert (landed.response.status_code, body) == (422, b'{"error": "bad"}')
    (call,) = server.calls
    assert (call.method, call.path, call.body) == ("POST", "/items", b'{"a": 1}')
    assert (call.headers["X-Token"], call.headers["Host"]) == ("t", f"127.0.0.1:{server.port}")


@pytest.mark.parametrize(
    ("status", "method", "body"),
    [(303, "GET", b""), (302, "GET", b""), (301, "GET", b""), (307, "POST", b"data"), (308, "POST", b"data")],
)
async def test_redirected_post_follows_go_rules_for_method_and_body(server, status, method, body):
    server.routes["/form"] = Reply(status, headers={"Location": "/done"})
    server.routes["/done"] = Reply(body=b"done")

    async with guarded_request(
        "POST",
        server.url("/form"),
        timeout_s=5,
        allow_private=True,
        content=b"data",
        headers={"Content-Type": "text/plain"},
    ) as landed:
        await landed.response.aread()

    assert landed.url == fetch.httpx.URL(server.url("/done"))
    assert (server.calls[1].method, server.calls[1].body) == (method, body)


async def test_credentials_are_dropped_when_a_redirect_changes_origin(server, other_server):
    server.routes["/here"] = Reply(302, headers={"Location": "/there"})
    server.routes["/there"] = Reply(302, headers={"Location": other_server.url("/away", "127.0.0.2")})
    other_server.routes["/away"] = Reply(body=b"away")

    async with guarded_request(
        "GET",
        server.url("/here"),
        timeout_s=5,
        allow_private=True,
        headers={"Authorization": "Bearer s3cret", "Cookie": "a=b", "X-Kept": "yes"},
    ) as landed:
        await landed.response.aread()

    assert server.calls[1].headers["Authorization"] == "Bearer s3cret"  # same origin
    (away,) = other_server.calls
    assert "Authorization" not in away.headers and "Cookie" not in away.headers
    assert away.headers["X-Kept"] == "yes"
