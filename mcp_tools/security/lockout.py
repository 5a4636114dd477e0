"""The answer to a login that django-axes has locked out: 429 with ``Retry-After``.

django-axes counts failed logins (per address and per username, see
``AXES_*`` in settings) and refuses further attempts during the cool-off.
This module is its ``AXES_LOCKOUT_CALLABLE``: a JSON error in the REST
envelope for the API, the login page's "too many attempts" for browsers —
both 429 with ``Retry-After`` (the cool-off: every attempt during a lockout
restarts it). ``locked_out(request)`` tells the token view, whose DRF request
axes marks instead of Django's (``api/auth.py``).

axes 8.3's async middleware passes ``(request, credentials)`` where its sync
one passes ``(request, response, credentials)``; only ``request`` is used here.

``LoginThrottleBackend`` is axes' backend, except that a login without a
request (``authenticate(username=..., password=...)`` from a shell, a
management command or the test client) is not judged: there is no address
to count, and axes would refuse it outright.
"""

from __future__ import annotations

import math

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse

LOCKOUT_TEMPLATE = "registration/locked_out.html"


def retry_after_s() -> int:
    cooloff = settings.AXES_COOLOFF_TIME
    return max(1, math.ceil(cooloff.total_seconds())) if cooloff else 24 * 60 * 60


def lockout_message() -> str:
    return f"Too many failed logins from this address or for this account; try again in {retry_after_s()} seconds."


def locked_out(request) -> bool:
    """Whether axes refused (or has just locked) this login attempt."""
    return bool(getattr(request, "axes_locked_out", False))


def lockout_json() -> JsonResponse:
    from mcp_tools.api.exceptions import error_body

    body = error_body("rate_limited", lockout_message())
    body["error"]["retry_after"] = retry_after_s()
    return JsonResponse(body, status=429, headers={"Retry-After": str(retry_after_s())})


def lockout_response(request: HttpRequest, *args, **kwargs) -> HttpResponse:
    """``AXES_LOCKOUT_CALLABLE``: the 429 for a locked-out login form or API call."""
    if request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", ""):
        return lockout_json()
    response = TemplateResponse(
        request,
        LOCKOUT_TEMPLATE,
        {
            "failure_limit": settings.AXES_FAILURE_LIMIT,
            "retry_after_minutes": math.ceil(retry_after_s() / 60),
        },
        status=429,
        headers={"Retry-After": str(retry_after_s())},
    )
    return response.render()


class LoginThrottleBackend(AxesStandaloneBackend):
    """First in ``AUTHENTICATION_BACKENDS``: refuses locked-out web logins before any password is checked."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
