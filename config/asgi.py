"""ASGI entry point: HTTP (Django) and WebSockets (consumers/) in one app.

    daphne config.asgi:application
"""
from __future__ import annotations

import asyncio
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from consumers.routing import websocket_application  # noqa: E402
from mcp_tools import embedded  # noqa: E402

router = ProtocolTypeRouter({
    "http": ASGIStaticFilesHandler(django_asgi_app),
    "websocket": websocket_application(),
})


async def application(scope, receive, send):
    """Hands the server's loop to the publisher (and starts the embedded worker) on first use."""
    embedded.ensure_started(asyncio.get_running_loop())
    return await router(scope, receive, send)
