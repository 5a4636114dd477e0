"""``GET /health/``: can this server do its job? For load balancers, uptime checks and the ``service_health`` tool.

    {"status": "ok", "checks": {"database": "ok", "event_store": "ok"}}                   200
    {"status": "unavailable", "checks": {"database": "ok", "event_store": "unavailable"}}  503

The database answers a query; the event store (Redis in production, memory
in the embedded default) answers a ping. No authentication, so nothing in
the answer is secret: it says what was checked and whether it answered,
never where a service lives or why it failed (the server's log says why).
"""

from __future__ import annotations

import logging

from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from .events import get_event_log

logger = logging.getLogger(__name__)

OK = "ok"
UNAVAILABLE = "unavailable"


def database_answers() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except DatabaseError:
        logger.warning("Health check: the database does not answer", exc_info=True)
        return False


def event_store_answers() -> bool:
    try:
        return get_event_log().available()
    except Exception:
        logger.warning("Health check: the event store does not answer", exc_info=True)
        return False


@require_safe
@never_cache
def health(request: HttpRequest) -> JsonResponse:
    """Called by load balancers and monitors; 200 when every check answers, else 503."""
    checks = {"database": database_answers(), "event_store": event_store_answers()}
    healthy = all(checks.values())
    return JsonResponse(
        {
            "status": OK if healthy else UNAVAILABLE,
            "checks": {name: OK if answered else UNAVAILABLE for name, answered in checks.items()},
        },
        status=200 if healthy else 503,
    )
