"""GET /health/: what a load balancer asks; the service_health tool in gantz.yaml asks it too."""

from __future__ import annotations

import pytest
from django.test import Client

from mcp_tools import health

pytestmark = pytest.mark.django_db


def test_health_answers_200_when_the_database_and_the_event_store_answer():
    response = Client().get("/health/")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "event_store": "ok"}}
    assert "no-cache" in response["Cache-Control"] and response["Content-Type"] == "application/json"


def test_health_answers_503_naming_the_check_that_failed_and_nothing_else(monkeypatch):
    class Unreachable:
        def available(self) -> bool:
            raise ConnectionError("redis://secret-host:6379 refused")

    monkeypatch.setattr(health, "get_event_log", Unreachable)
    response = Client().get("/health/")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "checks": {"database": "ok", "event_store": "unavailable"}}
    assert b"secret-host" not in response.content


def test_health_needs_no_login_and_takes_only_get_and_head():
    assert Client().head("/health/").status_code == 200
    assert Client().post("/health/").status_code == 405
