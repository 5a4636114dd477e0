"""The MCP endpoint, ``/mcp``, as an ASGI app beside Django and the WebSockets.

``config/asgi.py`` routes HTTP requests for ``/mcp`` here and everything else
to Django, and gives Channels' ``ProtocolTypeRouter`` a ``"lifespan"`` entry::

    ProtocolTypeRouter({"http": with_mcp(django_app), "websocket": ..., "lifespan": mcp_http.lifespan})

A request passes, outermost first:

1. ``HostGuard``: the ``Host`` (and a browser's ``Origin``) must match
   ``settings.ALLOWED_HOSTS`` with Django's own rules (``.example.com``,
   ``*``), else 421 / 403: a DNS-rebinding page cannot reach the endpoint.
   The SDK's own check (``TransportSecuritySettings``) is configured from the
   same list too; it only knows exact hosts, so a list with wildcard forms
   leaves it off and this guard decides alone.
2. Bearer auth (auth.py): an OAuth access token issued for this ``/mcp`` or a
   DRF token; without a valid one, 401 pointing at the protected-resource
   metadata (conformance mode only: no token on loopback, anonymous.py).
3. ``bodyguard.JsonBodyGuard``: a POST body over ``DATA_UPLOAD_MAX_MEMORY_SIZE``
   is a 413, one that ``mcp_tools/jsonguard.py`` refuses (``1e999``, lone
   surrogates, NaN, deep nesting) a 400 JSON-RPC parse error.
4. The SDK's ``StreamableHTTPSessionManager`` (stateful sessions, SSE
   responses; 2026-07-28 clients get its stateless per-request path).

The session manager must be *running* (its ``run()`` context holds the task
group every session lives in). Under uvicorn and other servers that speak
the ASGI lifespan protocol, ``lifespan.startup`` starts it and
``lifespan.shutdown`` stops it. **Daphne never sends lifespan events** (its
server has no lifespan support at all), so the manager is also started
lazily by the first ``/mcp`` request, in a task of the server's running
event loop, and lives until the loop ends. Either way it runs in a task of
its own, not in the request that happened to start it. A new event loop (a
test's) gets a manager of its own: a manager can only ``run()`` once.

Sessions live in the process that created them. With several server
processes behind a load balancer, route on the ``Mcp-Session-Id`` header
(sticky sessions); 2026-07-28 clients need no session and go anywhere.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit

from django.conf import settings
from django.http.request import split_domain_port, validate_host
from mcp.server import Server
from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from mcp_tools import metrics

from .anonymous import AnonymousOrBearer, check_allowed
from .auth import RequireToken, TokenBackend, request_user
from .bodyguard import JsonBodyGuard
from .server import build_server

logger = logging.getLogger(__name__)

MCP_PATH = "/mcp"
# How long lifespan.shutdown waits for open sessions to wind down.
SHUTDOWN_TIMEOUT_S = 10.0


def allowed_hosts() -> list[str]:
    """``ALLOWED_HOSTS``, with Django's DEBUG fallback for an empty list."""
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:
        hosts = [".localhost", "127.0.0.1", "[::1]"]
    return hosts


def transport_security(hosts: list[str]) -> TransportSecuritySettings:
    """The SDK's DNS-rebinding settings for ``hosts``: exact names on any port."""
    if any(host == "*" or host.startswith(".") for host in hosts):
        # Patterns the SDK's exact matching cannot express: HostGuard applies them.
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    origins = [f"{scheme}://{host}{port}" for host in hosts for scheme in ("http", "https") for port in ("", ":*")]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[h for host in hosts for h in (host, f"{host}:*")],
        allowed_origins=origins,
    )


class HostGuard:
    """Refuses a Host (421) or Origin (403) outside ``hosts``, by Django's rules."""

    def __init__(self, app: ASGIApp, hosts: list[str]) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {key.lower(): value.decode("latin1") for key, value in scope.get("headers", [])}
        if not self.allowed(headers.get(b"host", "")):
            return await Response("Invalid Host header", status_code=421)(scope, receive, send)
        origin = headers.get(b"origin")
        if origin is not None and not self.allowed(urlsplit(origin).netloc):
            return await Response("Invalid Origin header", status_code=403)(scope, receive, send)
        await self.app(scope, receive, send)

    def allowed(self, host: str) -> bool:
        domain, _port = split_domain_port(host)
        return bool(domain) and validate_host(domain, self.hosts)


def _starlette_app(manager: StreamableHTTPSessionManager) -> Starlette:
    """The SDK's recipe for a token-protected endpoint, with our tokens, our 401 and the JSON guard."""
    endpoint = RequireToken(JsonBodyGuard(StreamableHTTPASGIApp(manager)))
    return Starlette(
        routes=[Route(MCP_PATH, endpoint=endpoint)],
        middleware=[
            Middleware(AuthenticationMiddleware, backend=AnonymousOrBearer(TokenBackend())),
            Middleware(AuthContextMiddleware),
        ],
    )


class _Running:
    """One session manager, running in a task of one event loop."""

    def __init__(self, server: Server, loop: asyncio.AbstractEventLoop) -> None:
        check_allowed()
        hosts = allowed_hosts()
        self.loop = loop
        self.manager = StreamableHTTPSessionManager(app=server, security_settings=transport_security(hosts))
        self.app = HostGuard(_starlette_app(self.manager), hosts)
        self.ready = asyncio.Event()
        self.stopping = asyncio.Event()
        self.error: BaseException | None = None
        self.task = loop.create_task(self._run(), name="mcp-session-manager")

    async def _run(self) -> None:
        try:
            async with self.manager.run():
                self.ready.set()
                await self.stopping.wait()
        except BaseException as exc:
            self.error = exc
            raise
        finally:
            self.ready.set()  # nobody waits forever on a manager that ended or never started


class MCPHttpApp:
    """ASGI app for ``/mcp``; also the ASGI ``lifespan`` app that starts and stops it."""

    def __init__(self) -> None:
        self._server: Server | None = None
        self._running: _Running | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        running = await self.start()
        async with metrics.connection("mcp"):
            await running.app(scope, receive, send)

    async def start(self) -> _Running:
        """The manager running on this loop, started now if it is not (daphne: the first request)."""
        loop = asyncio.get_running_loop()
        running = self._running
        if running is None or running.loop is not loop or running.task.done():
            if self._server is None:
                self._server = build_server(user_for=request_user)
            running = self._running = _Running(self._server, loop)
            logger.info("MCP session manager starting on %s", MCP_PATH)
        await running.ready.wait()
        if running.task.done():
            raise RuntimeError("The MCP session manager stopped or could not start.") from running.error
        return running

    def is_running(self) -> bool:
        """Whether a session manager is serving requests now."""
        running = self._running
        return running is not None and running.ready.is_set() and not running.task.done()

    async def stop(self) -> None:
        running, self._running = self._running, None
        if running is None or running.loop is not asyncio.get_running_loop():
            return
        running.stopping.set()
        try:
            await asyncio.wait_for(running.task, SHUTDOWN_TIMEOUT_S)
        except Exception:
            logger.exception("MCP session manager did not stop cleanly")

    async def lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI lifespan protocol (uvicorn, hypercorn; daphne never calls it)."""
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.start()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return


mcp_http = MCPHttpApp()


def with_mcp(app: ASGIApp) -> ASGIApp:
    """``app`` for every HTTP path except ``/mcp`` (and below it), which goes to ``mcp_http``."""

    async def route(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if path == MCP_PATH or path.startswith(MCP_PATH + "/"):
            return await mcp_http(scope, receive, send)
        return await app(scope, receive, send)

    return route
