"""WebSocket routes. An unknown path is refused at the handshake (HTTP 403)."""

from __future__ import annotations

from channels.generic.websocket import AsyncWebsocketConsumer
from django.urls import path, re_path

from .auth import websocket_auth_stack
from .executions import ExecutionConsumer
from .monitor import MonitorConsumer


class RefuseConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        """Called for any path not routed above: closing before accept is a 403."""
        await self.close()


websocket_urlpatterns = [
    path("ws/executions/", ExecutionConsumer.as_asgi()),
    path("ws/monitor/", MonitorConsumer.as_asgi()),
    re_path(r"", RefuseConsumer.as_asgi()),
]


def websocket_application():
    from channels.routing import URLRouter

    return websocket_auth_stack(URLRouter(websocket_urlpatterns))
