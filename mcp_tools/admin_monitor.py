"""The live monitor: a page inside the admin, fed by ``/ws/monitor/``, for staff
with ``mcp_tools.view_all_executions`` (``selectors.may_monitor``; others get 403).

    path("admin/monitor/", include("mcp_tools.admin_monitor"))   # config/urls.py

The server only renders the frame (``admin/mcp_tools/monitor.html``);
everything live comes over the WebSocket, opened by
``static/mcp_tools/monitor.js`` with the admin's session cookie: the
``monitor.snapshot`` (running executions, per-tool counters), then every
execution's status and terminal events as they happen. A row can be
*watched*: the page subscribes to that execution and shows its streamed text.
"""
from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path

from . import selectors

MONITOR_SOCKET_PATH = "/ws/monitor/"


def monitor_view(request: HttpRequest) -> HttpResponse:
    if not selectors.may_monitor(request.user):
        raise PermissionDenied("The live monitor needs the mcp_tools.view_all_executions permission.")
    context = {
        **admin.site.each_context(request),
        "title": "Live monitor",
        "socket_path": MONITOR_SOCKET_PATH,
    }
    return TemplateResponse(request, "admin/mcp_tools/monitor.html", context)


# admin_view: staff only (anyone else is sent to the admin login page); then the permission.
urlpatterns = [
    path("", admin.site.admin_view(monitor_view), name="mcp_tools_monitor"),
]
