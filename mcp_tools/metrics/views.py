"""``GET /metrics``: the Prometheus exposition, for staff and for the configured scraper only.

Two ways in, first one present judged::

    Authorization: Bearer <METRICS_BEARER_TOKEN>    # a scraper (Prometheus' ``authorization`` setting)
    Authorization: Token <key>                       # a staff user's DRF token

Anything else is 401 (no or bad credentials, with ``WWW-Authenticate``) or
403 (a valid token of a user who is not staff), in the REST API's error
shape. The bearer token is compared in constant time and never logged; with
``METRICS_BEARER_TOKEN`` empty only staff tokens are accepted.

The body is what ``Accept`` asks for (OpenMetrics or the text format). With
``PROMETHEUS_MULTIPROC_DIR`` it merges every process of this host that
writes there; without it, this process alone.
"""

from __future__ import annotations

import hmac
import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from ..api.exceptions import error_body
from .instruments import MULTIPROC_DIR

logger = logging.getLogger(__name__)

CHALLENGE = 'Token, Bearer realm="metrics"'


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """``GET /metrics``: the metrics, or 401/403 before anything is read."""
    refusal = _refusal(request)
    if refusal is not None:
        return refusal
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return HttpResponse(encoder(_registry()), content_type=content_type, headers={"Cache-Control": "no-store"})


def _refusal(request: HttpRequest) -> JsonResponse | None:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        if _is_scraper_token(credentials.strip()):
            return None
        return _unauthenticated("The bearer token is not this service's METRICS_BEARER_TOKEN.")
    try:
        found = TokenAuthentication().authenticate(request)
    except AuthenticationFailed as exc:
        return _unauthenticated(str(exc.detail))
    if found is None:
        return _unauthenticated(
            "Send a staff user's token (Authorization: Token <key>) or the scraper's "
            "bearer token (Authorization: Bearer <token>)."
        )
    user, _ = found
    if not user.is_staff:
        return JsonResponse(
            error_body("permission_denied", "Metrics are for staff users and the configured scraper only."), status=403
        )
    return None


def _is_scraper_token(presented: str) -> bool:
    expected = settings.METRICS_BEARER_TOKEN
    return bool(expected) and hmac.compare_digest(presented.encode(), expected.encode())


def _unauthenticated(message: str) -> JsonResponse:
    return JsonResponse(error_body("not_authenticated", message), status=401, headers={"WWW-Authenticate": CHALLENGE})


_multiprocess_registry: CollectorRegistry | None = None
_warned = False


def _registry() -> CollectorRegistry:
    """Every process of this host (multi-process mode), or this process's own registry."""
    global _multiprocess_registry, _warned
    if not MULTIPROC_DIR:
        if settings.PRODUCTION and not _warned:
            _warned = True
            logger.warning(
                "PROMETHEUS_MULTIPROC_DIR is not set: /metrics shows this daphne process only, "
                "not the workers (README, Metrics)."
            )
        return REGISTRY
    if _multiprocess_registry is None:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=MULTIPROC_DIR)
        _multiprocess_registry = registry
    return _multiprocess_registry
