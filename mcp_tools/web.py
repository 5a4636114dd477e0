"""The browser page at ``/``: a chat-style client of the WebSocket protocol.

The page is the project's reference client for ``PROTOCOL.md``: everything it
does live (listing tools, executing, streaming, cancelling, replaying,
reconnecting) goes over ``/ws/executions/`` with the session cookie, exactly
as a third-party client would. The only thing the server adds to the HTML is
the user's recent history, so the page can list it before the socket opens::

    path("", web.index, name="index")    # config/urls.py

The history is read through ``selectors.executions_visible_to`` and then
narrowed to the user's *own* executions (staff see everyone's elsewhere; this
page is a personal workspace). It travels as a ``json_script`` blob, which
Django escapes for an HTML ``<script type="application/json">`` element, and
the page never turns model text into HTML (see ``static/mcp_tools/markdown.js``).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect
from django.shortcuts import render
from django.templatetags.static import static
from django.urls import reverse

from . import jsonguard, selectors
from .models import ToolExecution

logger = logging.getLogger(__name__)

WS_PATH = "/ws/executions/"
HISTORY_LIMIT = 50
# Long parameter values (a report's whole data object) are cut for the list.
HISTORY_LABEL_CHARS = 120

# Defence in depth: even if model text ever reached the DOM as markup, inline
# scripts and event-handler attributes would not run. The page itself loads
# only same-origin files and talks only to its own origin (HTTP and ws).
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        # Older browsers do not count ws(s) to the same host as 'self'.
        "connect-src 'self' ws://{host} wss://{host}",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def history_entry(execution: ToolExecution) -> dict[str, Any]:
    """What the page's history list shows for one execution."""
    # Compact, as the page writes the label of an execution it starts itself.
    label = json.dumps(jsonguard.displayable(execution.parameters), ensure_ascii=False, separators=(",", ":"))
    if len(label) > HISTORY_LABEL_CHARS:
        label = label[: HISTORY_LABEL_CHARS - 1] + "…"
    return {
        "execution_id": str(execution.pk),
        "tool": execution.tool.name,
        "status": execution.status,
        "created_at": execution.created_at.isoformat(),
        "duration_ms": execution.duration_ms,
        "cached": execution.cached,
        "label": label,
    }


def user_history(user, *, limit: int = HISTORY_LIMIT) -> list[dict[str, Any]]:
    """The user's own executions, newest first."""
    executions = selectors.executions_visible_to(user).filter(user=user).order_by("-created_at")[:limit]
    return [history_entry(execution) for execution in executions]


@login_required
def index(request: HttpRequest) -> HttpResponse:
    """The page: tool form, live output, history. All live data comes over the WebSocket."""
    response = render(
        request,
        "mcp_tools/index.html",
        {
            "history": user_history(request.user),
            "page_config": {"ws_path": WS_PATH, "login_url": reverse("login")},
        },
    )
    response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY.format(host=request.get_host())
    return response


def favicon(request: HttpRequest) -> HttpResponse:
    """``/favicon.ico``: browsers ask for it on pages that name no icon (the API's JSON, the browsable API)."""
    return HttpResponsePermanentRedirect(static("mcp_tools/favicon.svg"))
