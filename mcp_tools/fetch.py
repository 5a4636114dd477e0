"""Fetching a user-supplied URL without becoming a proxy into our own network.

A tool that fetches "any URL" runs inside our network, so a hostile URL can
point it at the database, the cloud metadata service or an admin panel
(server-side request forgery, SSRF). ``fetch_page`` therefore checks where a
request will *land*, not what the URL looks like::

    page = fetch_page("https://example.com/post", max_bytes=2_000_000, timeout_s=10)
    page = await fetch_page_async("https://example.com/post", max_bytes=2_000_000, timeout_s=10)
    text = extract_main_text(page)

    async with guarded_request("POST", url, content=b"...", timeout_s=10) as landed:
        ...  # landed.response (streaming), landed.url: any method, any status

``guarded_request`` is the one guard every outgoing request of a tool goes
through (``summarize_content``, Gantz ``http`` tools); ``fetch_page`` is its
synchronous twin for GET.

The rules, each closing a known bypass:

- only ``http`` and ``https``;
- resolve the host and check **every** address: ``127.1``, ``0x7f.1`` and
  ``2130706433`` are all 127.0.0.1, and a name may resolve to a public *and* a
  private address. IPv6 forms that wrap an IPv4 address (``::ffff:a.b.c.d``,
  NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``) are unwrapped and the IPv4 checked;
- connect to the address that was checked (the URL's host is replaced by the
  IP; ``Host`` and TLS SNI keep the name), so a DNS answer that changes between
  check and connect (DNS rebinding) cannot redirect the request;
- follow redirects by hand, re-checking scheme and address at every hop
  (as Go's client: 301/302/303 turn a request other than GET/HEAD into a GET
  without body; credentials are dropped when the origin changes);
- ignore proxy settings from the environment, cap the body's bytes and the
  total time.

``allow_private=True`` (local development, tests) admits loopback and private
addresses; a callable ``(ip) -> bool`` admits exactly the non-public addresses
it approves. Unspecified, multicast and cloud-metadata addresses are refused
whatever the policy.
"""

from __future__ import annotations

import asyncio
import codecs
import ipaddress
import logging
import re
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

import httpx
import trafilatura

from mcp_tools.errors import PermanentToolError, TransientToolError

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]
PrivatePolicy = bool | Callable[[IPAddress], bool]

ALLOWED_SCHEMES = frozenset({"http", "https"})
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
# Always refused, even when private addresses are allowed: no legitimate page
# lives there, and the metadata service hands out cloud credentials.
METADATA_ADDRESSES = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),
        ipaddress.ip_address("fd00:ec2::254"),
    }
)
NAT64_NETWORK = ipaddress.ip_network("64:ff9b::/96")
RETRYABLE_CLIENT_STATUSES = frozenset({408, 429})
# Sent again only to the origin they were written for.
CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
REQUEST_HEADERS = {
    "User-Agent": "mcp-tools-fetch/1.0",
    "Accept": "text/html,application/xhtml+xml,text/plain;q=0.9,text/*;q=0.8",
    # Uncompressed, so the byte cap bounds what crosses the wire too.
    "Accept-Encoding": "identity",
}


@dataclass(frozen=True)
class FetchedPage:
    """A fetched text resource. ``text`` holds at most ``max_bytes`` bytes of
    body; ``truncated`` says whether the server had more."""

    url: str
    final_url: str
    status_code: int
    content_type: str
    text: str
    truncated: bool


def fetch_page(
    url: str,
    *,
    max_bytes: int,
    timeout_s: float,
    allow_private: PrivatePolicy = False,
    max_redirects: int = 5,
    resolver: Resolver | None = None,
) -> FetchedPage:
    """Fetch ``url`` (GET), following up to ``max_redirects`` checked redirects.

    ``timeout_s`` bounds every network operation and the whole fetch."""
    resolve = resolver or _system_resolver
    deadline = time.monotonic() + timeout_s
    current = _parse_url(url)
    with httpx.Client(trust_env=False, follow_redirects=False, headers=REQUEST_HEADERS) as client:
        for _hop in range(max_redirects + 1):
            ip = _checked_address(current, resolve, allow_private)
            with _transport_errors(current), _open_pinned(client, current, ip, deadline) as response:
                if not response.is_redirect:
                    return _read_page(response, url, current, max_bytes, deadline)
                current = _redirect_target(response, current)
    raise PermanentToolError(f"{url} redirected more than {max_redirects} times.", code="too_many_redirects")


async def fetch_page_async(
    url: str,
    *,
    max_bytes: int,
    timeout_s: float,
    allow_private: PrivatePolicy = False,
    max_redirects: int = 5,
    resolver: Resolver | None = None,
) -> FetchedPage:
    """``fetch_page`` for asyncio: the same checks, errors and result."""
    async with guarded_request(
        "GET",
        url,
        headers=REQUEST_HEADERS,
        timeout_s=timeout_s,
        allow_private=allow_private,
        max_redirects=max_redirects,
        resolver=resolver,
    ) as landed:
        content_type = _page_type(landed.response, landed.url)
        body = bytearray()
        truncated = False
        async for chunk in landed.response.aiter_bytes():
            body += chunk
            if len(body) > max_bytes:
                truncated = True
                break
        return FetchedPage(
            url=url,
            final_url=str(landed.url),
            status_code=landed.response.status_code,
            content_type=content_type,
            text=bytes(body[:max_bytes]).decode(_charset(landed.response), errors="replace"),
            truncated=truncated,
        )


@dataclass(frozen=True)
class GuardedResponse:
    """Where a guarded request landed: the (streaming) response and its URL."""

    response: httpx.Response
    url: httpx.URL


@asynccontextmanager
async def guarded_request(
    method: str,
    url: str,
    *,
    timeout_s: float,
    headers: Mapping[str, str | bytes] | None = None,
    content: bytes | None = None,
    allow_private: PrivatePolicy = False,
    max_redirects: int = 5,
    resolver: Resolver | None = None,
) -> AsyncIterator[GuardedResponse]:
    """Send ``method url`` through the guard and yield the final, non-redirect response.

    Any status is yielded; reading the body is the caller's, within
    ``timeout_s``, which bounds every operation and the whole block. Errors:
    ``invalid_url``, ``blocked_address``, ``too_many_redirects``,
    ``fetch_failed`` (unknown host), ``fetch_unavailable`` (no connection,
    dropped stream), ``fetch_timeout``."""
    current = _parse_url(url)
    headers = dict(headers or {})
    try:
        async with asyncio.timeout(timeout_s), httpx.AsyncClient(trust_env=False, follow_redirects=False) as client:
            for _hop in range(max_redirects + 1):
                ip = _check_addresses(current, await _resolve_async(current, resolver), allow_private)
                request = _pinned_request(client, method, current, ip, headers, content, timeout_s)
                with _transport_errors(current):
                    response = await client.send(request, stream=True)
                    try:
                        if not response.is_redirect:
                            yield GuardedResponse(response, current)
                            return
                    finally:
                        await response.aclose()
                target = _redirect_target(response, current)
                method, content, headers = _next_hop(response.status_code, method, content, headers, current, target)
                current = target
    except TimeoutError as exc:
        raise TransientToolError(f"Fetching {current.host} timed out.", code="fetch_timeout") from exc
    raise PermanentToolError(f"{url} redirected more than {max_redirects} times.", code="too_many_redirects")


def extract_main_text(page: FetchedPage) -> str:
    """The readable main text of ``page``, without markup or page furniture."""
    if page.content_type in HTML_TYPES:
        text = _html_main_text(page.text, page.final_url)
    else:
        text = page.text
    text = _normalise_whitespace(text)
    if not text:
        raise PermanentToolError(f"No readable text found at {page.final_url}.", code="no_content")
    return text


# --- URL and address checks -------------------------------------------------


def _parse_url(raw: str) -> httpx.URL:
    try:
        url = httpx.URL(raw)
        port = url.port
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise PermanentToolError(f"Not a valid URL: {raw!r}.", code="invalid_url") from exc
    if url.scheme not in ALLOWED_SCHEMES:
        raise PermanentToolError(
            f"Only http and https URLs can be fetched, not {url.scheme or 'none'!r}.", code="invalid_url"
        )
    if not url.host or (port is not None and not 0 < port < 65536):
        raise PermanentToolError(f"Not a valid URL: {raw!r}.", code="invalid_url")
    return url.copy_with(fragment=None)


def _checked_address(url: httpx.URL, resolve: Resolver, allow_private: PrivatePolicy) -> IPAddress:
    """Resolve ``url``'s host once and return the address to connect to."""
    return _check_addresses(url, _resolve(url, resolve), allow_private)


def _check_addresses(url: httpx.URL, addresses: list[IPAddress], allow_private: PrivatePolicy) -> IPAddress:
    """The address to connect to, if every address the host resolved to is allowed."""
    for ip in addresses:
        if not is_address_allowed(ip, allow_private):
            logger.warning("Blocked fetch of %s: it resolves to %s", url.host, ip)
            raise PermanentToolError(
                f"Refusing to fetch {url.host}: it is not a public address.", code="blocked_address"
            )
    return addresses[0]


def _resolve(url: httpx.URL, resolve: Resolver) -> list[IPAddress]:
    literal = _ip_literal(url)
    if literal is not None:
        return [literal]
    with _resolution_errors(url):
        return _addresses(url, resolve(url.host, _port(url)))


async def _resolve_async(url: httpx.URL, resolve: Resolver | None) -> list[IPAddress]:
    """``_resolve`` without blocking the event loop (``resolve``, if given, is sync)."""
    literal = _ip_literal(url)
    if literal is not None:
        return [literal]
    if resolve is not None:
        return _resolve(url, resolve)
    with _resolution_errors(url):
        infos = await asyncio.get_running_loop().getaddrinfo(url.host, _port(url), type=socket.SOCK_STREAM)
    return _addresses(url, list(dict.fromkeys(str(info[4][0]) for info in infos)))


def _ip_literal(url: httpx.URL) -> IPAddress | None:
    try:
        return ipaddress.ip_address(url.host)
    except ValueError:
        return None  # a name, not an IP literal


def _port(url: httpx.URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)


def _addresses(url: httpx.URL, answers: list[str]) -> list[IPAddress]:
    if not answers:
        raise PermanentToolError(f"Could not resolve host {url.host}.", code="fetch_failed")
    return [ipaddress.ip_address(answer) for answer in answers]


@contextmanager
def _resolution_errors(url: httpx.URL) -> Iterator[None]:
    try:
        yield
    except socket.gaierror as exc:
        if exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", None)):
            raise PermanentToolError(f"Could not resolve host {url.host}.", code="fetch_failed") from exc
        raise TransientToolError(f"Could not resolve host {url.host} right now.", code="fetch_unavailable") from exc


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def is_address_allowed(ip: IPAddress, allow_private: PrivatePolicy = False) -> bool:
    """Whether a connection to ``ip`` is acceptable under ``allow_private``."""
    ip = _unwrap_ipv4(ip)
    if ip.is_unspecified or ip.is_multicast or ip in METADATA_ADDRESSES:
        return False
    # is_global alone is not enough: it is true for some reserved ranges.
    if ip.is_global and not (ip.is_reserved or ip.is_private or ip.is_link_local):
        return True
    if callable(allow_private):
        return bool(allow_private(ip))
    return allow_private


def _unwrap_ipv4(ip: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address carries (mapped, NAT64, 6to4), else ``ip``."""
    if isinstance(ip, ipaddress.IPv4Address):
        return ip
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in NAT64_NETWORK:
        return ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    return ip


# --- HTTP ---------------------------------------------------------------------


@contextmanager
def _open_pinned(client: httpx.Client, url: httpx.URL, ip: IPAddress, deadline: float) -> Iterator[httpx.Response]:
    """Stream a GET of ``url`` from ``ip``; httpx never sees the name to resolve."""
    request = _pinned_request(client, "GET", url, ip, {}, None, _remaining(deadline))
    response = client.send(request, stream=True)
    try:
        yield response
    finally:
        response.close()


def _pinned_request(
    client: httpx.Client | httpx.AsyncClient,
    method: str,
    url: httpx.URL,
    ip: IPAddress,
    headers: Mapping[str, str | bytes],
    content: bytes | None,
    timeout_s: float,
) -> httpx.Request:
    """A request for ``url`` addressed to ``ip``: ``Host`` and TLS SNI keep the name."""
    extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
    # Encoded as httpx would encode them (ASCII), so str and bytes values mix.
    raw_headers = [
        (name.encode("ascii"), value if isinstance(value, bytes) else value.encode("ascii"))
        for name, value in headers.items()
        if name.lower() != "host"
    ]
    return client.build_request(
        method,
        url.copy_with(host=str(ip)),
        headers=[*raw_headers, (b"Host", url.netloc)],
        content=content,
        timeout=httpx.Timeout(timeout_s),
        extensions=extensions,
    )


def _next_hop(
    status: int,
    method: str,
    content: bytes | None,
    headers: dict[str, str | bytes],
    origin: httpx.URL,
    target: httpx.URL,
) -> tuple[str, bytes | None, dict[str, str | bytes]]:
    """Method, body and headers for following a redirect, as Go's HTTP client does."""
    if status in (301, 302, 303) and method not in ("GET", "HEAD"):
        method, content = "GET", None
        headers = {
            name: value for name, value in headers.items() if name.lower() not in ("content-type", "content-length")
        }
    if (origin.scheme, origin.host, _port(origin)) != (target.scheme, target.host, _port(target)):
        headers = {name: value for name, value in headers.items() if name.lower() not in CREDENTIAL_HEADERS}
    return method, content, headers


def _redirect_target(response: httpx.Response, url: httpx.URL) -> httpx.URL:
    """The absolute URL a redirect points to, checked like the original."""
    location = response.headers["location"]
    try:
        target = str(url.join(location))
    except httpx.InvalidURL as exc:
        raise PermanentToolError(f"{url} redirected to an invalid URL.", code="invalid_url") from exc
    logger.debug("HTTP %s redirect %s -> %s", response.status_code, url, target)
    return _parse_url(target)


def _read_page(
    response: httpx.Response, requested: str, final: httpx.URL, max_bytes: int, deadline: float
) -> FetchedPage:
    content_type = _page_type(response, final)
    body, truncated = _read_capped(response, max_bytes, deadline)
    return FetchedPage(
        url=requested,
        final_url=str(final),
        status_code=response.status_code,
        content_type=content_type,
        text=body.decode(_charset(response), errors="replace"),
        truncated=truncated,
    )


def _page_type(response: httpx.Response, final: httpx.URL) -> str:
    """The page's media type, if the fetch succeeded and the page is text."""
    _raise_for_status(response, final)
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if not (content_type.startswith("text/") or content_type in HTML_TYPES):
        raise PermanentToolError(
            f"{final} is {content_type or 'of unknown type'}, not a text page.", code="unsupported_content"
        )
    return content_type


def _raise_for_status(response: httpx.Response, url: httpx.URL) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    message = f"Fetching {url} failed with HTTP {status}."
    if status >= 500 or status in RETRYABLE_CLIENT_STATUSES:
        raise TransientToolError(message, code="fetch_unavailable", retry_after=_retry_after(response))
    raise PermanentToolError(message, code="fetch_failed")


def _read_capped(response: httpx.Response, max_bytes: int, deadline: float) -> tuple[bytes, bool]:
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > max_bytes:
            return bytes(body[:max_bytes]), True
        _remaining(deadline)  # a server dripping bytes must not outlast the budget
    return bytes(body), False


def _charset(response: httpx.Response) -> str:
    charset = response.charset_encoding or "utf-8"
    try:
        codecs.lookup(charset)
    except LookupError:
        return "utf-8"
    return charset


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return None


def _remaining(deadline: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TransientToolError("The page took too long to fetch.", code="fetch_timeout")
    return remaining


@contextmanager
def _transport_errors(url: httpx.URL) -> Iterator[None]:
    """Translate httpx's transport failures into the tool error hierarchy."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise TransientToolError(f"Fetching {url.host} timed out.", code="fetch_timeout") from exc
    except httpx.TransportError as exc:
        raise TransientToolError(f"Could not connect to {url.host}.", code="fetch_unavailable") from exc
    except httpx.DecodingError as exc:  # e.g. "Content-Encoding: gzip" on a body that is not
        raise PermanentToolError(f"{url.host} sent a body that cannot be decoded.", code="fetch_failed") from exc


# --- Text extraction ------------------------------------------------------------


def _html_main_text(html: str, url: str) -> str:
    text = trafilatura.extract(html, url=url, include_comments=False, include_tables=True, favor_recall=True)
    if text:
        return text
    logger.debug("No main text found in %s; falling back to the page's text", url)
    _tree, text, _length = trafilatura.baseline(html)
    return text or trafilatura.html2txt(html) or ""


def _normalise_whitespace(text: str) -> str:
    """Collapse runs of spaces, keep paragraph breaks (at most one blank line)."""
    lines = (" ".join(line.split()) for line in text.splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
