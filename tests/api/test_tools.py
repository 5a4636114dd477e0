"""GET /api/tools/ and /api/tools/{id}/: the article's ToolSerializer with stats."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from mcp_tools.models import Tool, ToolUsageStats
from tests.api.conftest import client_for

pytestmark = pytest.mark.django_db

STATS_FIELDS = {
    "total_executions",
    "successful_executions",
    "failed_executions",
    "success_rate",
    "average_duration_ms",
    "last_execution",
    "input_tokens",
    "output_tokens",
    "cancelled_executions",
    "cached_executions",
}


def test_tools_list_is_paginated_and_shows_active_tools_only(tools, alice):
    Tool.objects.filter(name__in=["summarize_content", "my_usage", "service_health"]).update(is_active=False)
    response = client_for(alice).get("/api/tools/")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1 and body["next"] is None
    (tool,) = body["results"]
    assert set(tool) == {"id", "name", "description", "parameters_schema", "timeout", "created_at", "stats"}
    assert tool["name"] == "generate_report"
    assert tool["parameters_schema"]["required"] == ["data"]


def test_tool_detail_includes_the_articles_stats_plus_tokens_and_counts(tools, alice):
    tool = Tool.objects.get(name="generate_report")
    ToolUsageStats.objects.filter(tool=tool).update(
        total_executions=4,
        successful_executions=2,
        failed_executions=1,
        cancelled_executions=1,
        cached_executions=1,
        total_duration_ms=300,
        input_tokens=70,
        output_tokens=900,
    )
    response = client_for(alice).get(f"/api/tools/{tool.pk}/")
    assert response.status_code == 200
    stats = response.json()["stats"]
    assert set(stats) == STATS_FIELDS
    assert stats["success_rate"] == 0.5 and stats["average_duration_ms"] == 150
    assert (stats["input_tokens"], stats["output_tokens"]) == (70, 900)
    assert (stats["cancelled_executions"], stats["cached_executions"]) == (1, 1)


def test_tool_can_be_addressed_by_name(tools, alice):
    response = client_for(alice).get("/api/tools/generate_report/")
    assert response.status_code == 200
    assert response.json()["id"] == Tool.objects.get(name="generate_report").pk


def test_inactive_or_unknown_tool_is_404_with_the_error_envelope(tools, alice):
    tool = Tool.objects.get(name="generate_report")
    tool.is_active = False
    tool.save()
    client = client_for(alice)
    for url in (f"/api/tools/{tool.pk}/", "/api/tools/generate_report/", "/api/tools/999999/"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert response.json()["error"]["code"] == "not_found"
    response = client.post(f"/api/tools/{tool.pk}/execute/", {"parameters": {"data": {}}}, format="json")
    assert response.status_code == 404


def test_api_without_credentials_is_401_and_a_bad_token_too(tools):
    response = APIClient().get("/api/tools/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == "Token"
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-key")
    response = client.get("/api/tools/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_token_endpoint_trades_username_and_password_for_the_users_token(alice):
    response = APIClient().post("/api/auth/token/", {"username": "alice", "password": "pw-alice"}, format="json")
    assert response.status_code == 200
    assert response.json() == {"token": alice.auth_token.key}
    wrong = APIClient().post("/api/auth/token/", {"username": "alice", "password": "nope"}, format="json")
    assert wrong.status_code == 400
    assert wrong.json()["error"]["code"] == "invalid_request"


def test_session_login_works_for_the_browsable_api(tools, alice):
    client = APIClient()
    assert client.login(username="alice", password="pw-alice")
    response = client.get("/api/tools/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert b"generate_report" in response.content


def test_openapi_schema_documents_every_endpoint_and_the_docs_page_serves_locally(alice):
    client = client_for(alice)
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert {
        "/api/tools/",
        "/api/tools/{id}/",
        "/api/tools/{id}/execute/",
        "/api/tools/{id}/execute_async/",
        "/api/executions/",
        "/api/executions/{id}/",
        "/api/executions/{id}/status/",
        "/api/executions/{id}/events/",
        "/api/auth/token/",
    } <= set(schema["paths"])
    events = schema["paths"]["/api/executions/{id}/events/"]["get"]
    assert "text/event-stream" in events["responses"]["200"]["content"]
    execute = schema["paths"]["/api/tools/{id}/execute/"]["post"]["responses"]
    assert {"200", "400", "404", "429", "502"} <= set(execute)
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content and b"cdn.jsdelivr" not in docs.content
