"""The live monitor: a page inside the admin, fed by ``/ws/monitor/``, for staff
with ``mcp_tools.view_all_executions`` (``selectors.may_monitor``; others get 403).

    path("admin/monitor/", include("mcp_tools.admin_monitor"))   # config/urls.py

The server only renders the frame (``admin/mcp_tools/monitor.html``);
everything live comes over the WebSocket, opened by
``static/mcp_tools/monitor.js`` with the admin's session cookie: the
``monitor.snapshot`` (running and recently ended executions, per-tool
counters), then every execution's status and terminal events as they happen.
A row can be *watched*: the page subscribes to that execution and shows its
streamed text.

The charts (``static/mcp_tools/monitor-charts.js``, drawn with the vendored
uPlot) read ``charts.json?window=hour|day`` (``selectors.monitor_charts``):
percentiles and per-minute counts are aggregates the feed's events do not
carry, so the database computes them. The page asks again when the feed says
an execution started or ended (at most every few seconds) and every 30 s so
the window slides; an idle monitor costs one small query set per 30 s.
"""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path

from . import selectors

MONITOR_SOCKET_PATH = "/ws/monitor/"


def monitor_view(request: HttpRequest) -> HttpResponse:
    context = {
        **admin.site.each_context(request),
        "title": "Live monitor",
        "socket_path": MONITOR_SOCKET_PATH,
        "chart_windows": list(selectors.CHART_WINDOWS),
    }
    return TemplateResponse(request, "admin/mcp_tools/monitor.html", context)


def charts_view(request: HttpRequest) -> JsonResponse:
    """The charts' data for ``?window=`` (``hour``, the default, or ``day``)."""
    window = request.GET.get("window", "hour")
    if window not in selectors.CHART_WINDOWS:
        return JsonResponse(
            {
                "error": {
                    "code": "invalid_request",
                    "message": f"window must be one of {', '.join(selectors.CHART_WINDOWS)}.",
                }
            },
            status=400,
        )
    return JsonResponse(selectors.monitor_charts(window=window))


def monitor_access(view):
    """The page and its data behind one gate: the admin's (staff only; anyone else is sent to the
    admin login page), then the permission (403). Change it here and both follow."""

    def gated(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not selectors.may_monitor(request.user):
            raise PermissionDenied("The live monitor needs the mcp_tools.view_all_executions permission.")
        return view(request, *args, **kwargs)

    return admin.site.admin_view(gated)


urlpatterns = [
    path("", monitor_access(monitor_view), name="mcp_tools_monitor"),
    path("charts.json", monitor_access(charts_view), name="mcp_tools_monitor_charts"),
]
