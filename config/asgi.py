"""ASGI entry point: HTTP (Django), the MCP endpoint and WebSockets in one app.

    daphne config.asgi:application        (or: uvicorn config.asgi:application)

``/mcp`` is the MCP streamable HTTP endpoint (``mcp_tools/mcp/asgi.py``);
every other HTTP path is Django. The ``"lifespan"`` entry lets servers that
speak the ASGI lifespan protocol (uvicorn) start and stop the MCP session
manager; daphne sends no lifespan events, so the first ``/mcp`` request starts
it instead (see ``mcp_tools/mcp/asgi.py``).
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from consumers.routing import websocket_application  # noqa: E402
from mcp_tools import embedded  # noqa: E402
from mcp_tools.mcp.asgi import mcp_http, with_mcp  # noqa: E402

router = ProtocolTypeRouter(
    {
        "http": with_mcp(ASGIStaticFilesHandler(django_asgi_app)),
        "websocket": websocket_application(),
        "lifespan": mcp_http.lifespan,
    }
)


async def application(scope, receive, send):
    """Starts the embedded worker (embedded default) on first use."""
    embedded.ensure_started()
    return await router(scope, receive, send)
