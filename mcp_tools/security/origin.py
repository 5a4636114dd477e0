"""May a browser page on this ``Origin`` act here with the user's session cookie?

A session cookie rides along with every request a browser sends to this
site, and "site" ignores the port (and, for ``SameSite=Lax``, the scheme): a
page on ``http://localhost:3000`` gets the cookie of ``http://localhost:8000``.
Browsers say where a request comes from in ``Origin`` (WebSocket handshakes,
cross-origin fetches and ``EventSource``), so the check compares the whole
origin — scheme, host and port — and accepts only:

* the request's **own origin**: the scheme of the connection (``https`` when
  ``SECURE_PROXY_SSL_HEADER`` says so) and the ``Host`` it was sent to, if
  that host is in ``ALLOWED_HOSTS`` (``X-Forwarded-Host`` with
  ``USE_X_FORWARDED_HOST``, as in Django);
* an origin in ``CSRF_TRUSTED_ORIGINS`` (exact, or Django's
  ``https://*.example.com`` form): the deployment's explicit list, shared
  with Django's own CSRF check.

``ALLOWED_HOSTS = ["*"]`` makes any *Host* acceptable, never any *Origin*.
``null``, a malformed origin, and one that differs in scheme, host or port
are refused. No ``Origin`` at all is not a browser page (scripts, servers)
and passes::

    origin_allowed("http://localhost:3000", secure=False, host="localhost:8000")   # False
    scope_origin_allowed(scope)             # a WebSocket handshake (consumers/auth.py)
    cookie_request_allowed(request)         # an HttpRequest carrying the session cookie (the event stream)
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest
from django.http.request import split_domain_port, validate_host
from django.utils.http import is_same_domain

DEFAULT_PORTS = {"http": 80, "https": 443}
FOREIGN_ORIGIN_MESSAGE = (
    "Requests carrying the session cookie must come from this site's own origin or one in "
    "CSRF_TRUSTED_ORIGINS; use a token from other origins."
)


def normalized(origin: str) -> str | None:
    """``scheme://host[:port]`` in lower case without a default port, or None if it is no web origin."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    if scheme not in DEFAULT_PORTS or not host or parts.username is not None or parts.password is not None:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return None
    if ":" in host:  # IPv6 literal: keep its brackets
        host = f"[{host}]"
    suffix = "" if port in (None, DEFAULT_PORTS[scheme]) else f":{port}"
    return f"{scheme}://{host}{suffix}"


def allowed_hosts() -> list[str]:
    """``ALLOWED_HOSTS``, with Django's own fallback when DEBUG is on and the list is empty."""
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:
        hosts = [".localhost", "127.0.0.1", "[::1]"]
    return hosts


def own_origin(*, secure: bool, host: str | None) -> str | None:
    """The origin of a request sent to ``host`` over ``secure``, if ``host`` is one we serve."""
    if not host:
        return None
    domain, _port = split_domain_port(host)
    if not domain or not validate_host(domain, allowed_hosts()):
        return None
    return normalized(f"{'https' if secure else 'http'}://{host}")


def trusted(origin: str) -> bool:
    """Whether the normalized ``origin`` is in ``CSRF_TRUSTED_ORIGINS``."""
    scheme, _, netloc = origin.partition("://")
    for entry in settings.CSRF_TRUSTED_ORIGINS:
        if "://*." in entry:
            entry_scheme, _, pattern = entry.partition("://*")
            if entry_scheme.lower() == scheme and is_same_domain(netloc, pattern.lower()):
                return True
        elif normalized(entry) == origin:
            return True
    return False


def origin_allowed(origin: str | None, *, secure: bool, host: str | None) -> bool:
    """The rule above, for an ``Origin`` header value (None: no header)."""
    if origin is None:
        return True
    candidate = normalized(origin)
    if candidate is None:
        return False
    return candidate == own_origin(secure=secure, host=host) or trusted(candidate)


# --- ASGI scopes (WebSocket handshakes) -------------------------------------------------------


def _scope_header(scope: dict, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin1")
    return None


def scope_is_secure(scope: dict) -> bool:
    """Django's ``request.is_secure()`` for an ASGI scope: the proxy's header when configured and sent."""
    proxy_header = settings.SECURE_PROXY_SSL_HEADER
    if proxy_header:
        name, secure_value = proxy_header
        header = name.removeprefix("HTTP_").replace("_", "-").lower().encode("latin1")
        value = _scope_header(scope, header)
        if value is not None:
            return value.split(",", 1)[0].strip() == secure_value
    return scope.get("scheme") in ("https", "wss")


def scope_host(scope: dict) -> str | None:
    """The host the client addressed (Django's ``get_host()`` without its validation)."""
    if settings.USE_X_FORWARDED_HOST:
        forwarded = _scope_header(scope, b"x-forwarded-host")
        if forwarded:
            return forwarded.split(",", 1)[0].strip()
    host = _scope_header(scope, b"host")
    if host:
        return host
    server = scope.get("server")
    return f"{server[0]}:{server[1]}" if server and server[1] else None


def scope_origin_allowed(scope: dict) -> bool:
    return origin_allowed(_scope_header(scope, b"origin"), secure=scope_is_secure(scope), host=scope_host(scope))


# --- Django requests (the event stream) ------------------------------------------------------------


def cookie_request_allowed(request: HttpRequest) -> bool:
    """A request carrying the session cookie must come from an allowed origin (without the
    cookie a page can only act with a token it was given, and that is the token holder's choice)."""
    if settings.SESSION_COOKIE_NAME not in request.COOKIES:
        return True
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    try:
        host = request.get_host()
    except DisallowedHost:
        host = None
    return origin_allowed(origin, secure=request.is_secure(), host=host)
