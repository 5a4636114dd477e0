"""GET /api/executions/, /api/executions/{id}/ and /status/: own executions only."""

from __future__ import annotations

import uuid

import pytest

from mcp_tools import services
from mcp_tools.models import Tool
from tests.api.conftest import REPORT_PARAMETERS, client_for
from tests.conftest import run_now

pytestmark = pytest.mark.django_db(transaction=True)


def run(user, tool: str = "generate_report", parameters=None):
    """A finished execution, made through the service path (inline, as the CLI does)."""
    return run_now(user, tool, parameters or REPORT_PARAMETERS)


def test_list_shows_only_the_callers_executions_newest_first(tools, alice, bob, staff):
    mine = [run(alice, parameters={"data": {"n": n}}) for n in range(3)]
    run(bob)
    run(staff)
    body = client_for(alice).get("/api/executions/").json()
    assert body["count"] == 3
    assert [e["id"] for e in body["results"]] == [str(e.pk) for e in reversed(mine)]
    # Staff too see only their own here; everyone's is in the admin and the monitor.
    assert client_for(staff).get("/api/executions/").json()["count"] == 1


def test_list_is_paginated(tools, alice):
    for n in range(3):
        run(alice, parameters={"data": {"n": n}})
    client = client_for(alice)
    assert client.get("/api/executions/").json()["next"] is None  # 50 a page by default
    first = client.get("/api/executions/?page_size=2").json()
    assert first["count"] == 3 and len(first["results"]) == 2 and first["next"]
    second = client.get(first["next"]).json()
    assert len(second["results"]) == 1 and second["next"] is None


def test_list_filters_by_tool_name_or_id_and_by_status(tools, alice):
    report = run(alice)
    cancelled = services.execution_prepare(user=alice, tool_name="generate_report", parameters={"data": {"slow": True}})
    services.execution_cancel(user=alice, execution_id=cancelled.pk)
    summarize = Tool.objects.get(name="summarize_content")
    client = client_for(alice)

    def ids(query: str) -> set[str]:
        response = client.get("/api/executions/" + query)
        assert response.status_code == 200, response.json()
        return {e["id"] for e in response.json()["results"]}

    assert ids("?tool=generate_report") == {str(report.pk), str(cancelled.pk)}
    assert ids(f"?tool={summarize.pk}") == set()
    assert ids("?status=completed") == {str(report.pk)}
    assert ids("?status=cancelled&tool=generate_report") == {str(cancelled.pk)}
    assert ids("?status=completed&status=cancelled") == {str(report.pk), str(cancelled.pk)}
    bad = client.get("/api/executions/?status=exploded")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_request"


def test_detail_shows_the_execution_and_others_are_404(tools, alice, bob):
    execution = run(alice)
    response = client_for(alice).get(f"/api/executions/{execution.pk}/")
    assert response.status_code == 200
    data = response.json()
    assert data["id"] == str(execution.pk) and data["status"] == "completed"
    assert data["result"]["report"] and data["output_tokens"] > 0
    for url in (
        f"/api/executions/{execution.pk}/",
        f"/api/executions/{uuid.uuid4()}/",
        "/api/executions/not-a-uuid/",
        f"/api/executions/{execution.pk}/status/",
    ):
        response = client_for(bob).get(url)
        assert response.status_code == 404, url
        assert response.json()["error"]["code"] == "not_found"


def test_status_has_the_articles_four_fields(tools, alice):
    execution = run(alice)
    response = client_for(alice).get(f"/api/executions/{execution.pk}/status/")
    assert response.status_code == 200
    execution.refresh_from_db()
    assert response.json() == {
        "id": str(execution.pk),
        "status": "completed",
        "result": execution.result,
        "error": None,
    }


def test_status_of_a_failed_execution_carries_its_error(tools, alice, settings, fake_anthropic):
    settings.LLM_PROVIDER = "anthropic"
    settings.ANTHROPIC_API_KEY = "test-key"
    settings.ANTHROPIC_BASE_URL = fake_anthropic.url
    fake_anthropic.set_default({"status": 401})
    execution = run(alice)
    body = client_for(alice).get(f"/api/executions/{execution.pk}/status/").json()
    assert body["status"] == "failed" and body["result"] is None
    assert "credentials" in body["error"]


def test_executions_are_read_only(tools, alice):
    execution = run(alice)
    client = client_for(alice)
    assert client.delete(f"/api/executions/{execution.pk}/").status_code == 405
    response = client.post("/api/executions/", {}, format="json")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
