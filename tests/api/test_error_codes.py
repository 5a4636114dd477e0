"""Every error code the REST API answers, by a request that causes it — and the README's table lists exactly these."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests.api.conftest import client_for

pytestmark = pytest.mark.django_db(transaction=True)

README = Path(__file__).resolve().parents[2] / "README.md"
EXECUTE = "/api/tools/generate_report/execute_async/"


def answer(response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


@pytest.fixture
def answers(tools, alice, bob, settings) -> dict[str, tuple[int, str]]:
    """code -> (status, code) actually answered, one request each."""
    settings.MCP_CONFIG = {**settings.MCP_CONFIG, "RATE_LIMIT_PER_MINUTE": 2}
    api = client_for(alice)
    json_post = lambda body: api.post(EXECUTE, body, format="json")  # noqa: E731
    results = {
        "invalid_parameters": json_post({"parameters": {"data": [1, 2]}}),
        "invalid_request": json_post({"parameters": [1, 2]}),
        "invalid_json": api.post(EXECUTE, '{"parameters":', content_type="application/json"),
        "request_too_large": api.post(
            EXECUTE, '{"parameters": {"data": {"x": "%s"}}}' % ("x" * 3_000_000), content_type="application/json"
        ),
        "not_authenticated": APIClient().get("/api/tools/"),
        "method_not_allowed": api.get(EXECUTE),
        "not_acceptable": api.get("/api/tools/", HTTP_ACCEPT="application/xml"),
        "unsupported_media_type": api.post(EXECUTE, "parameters", content_type="text/plain"),
        "not_found": client_for(bob).get(
            f"/api/executions/{json_post({'parameters': {'data': {}}}).json()['execution_id']}/"
        ),
    }

    def keyed(data):
        return api.post(EXECUTE, {"parameters": {"data": data}}, format="json", HTTP_IDEMPOTENCY_KEY="k1")

    keyed({"first": 1})
    results["idempotency_conflict"] = keyed({"second": 2})
    results["rate_limited"] = json_post({"parameters": {"data": {"again": 1}}})
    bad_token = APIClient()
    bad_token.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    results["authentication_failed"] = bad_token.get("/api/tools/")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    results["permission_denied"] = browser.post(EXECUTE, {"parameters": {}}, content_type="application/json")
    execution_id = api.get("/api/executions/").json()["results"][0]["id"]
    results["invalid_message"] = api.get(f"/api/executions/{execution_id}/events/", HTTP_LAST_EVENT_ID="x")
    return {code: answer(response) for code, response in results.items()}


def readme_table() -> dict[str, int]:
    section = README.read_text().split("**Errors** all have one shape", 1)[1].split("\n\n(", 1)[0]
    return {code: int(status) for status, code in re.findall(r"^\| (\d{3}) \| `(\w+)` \|", section, re.M)}


def test_each_code_in_the_readme_table_is_what_its_request_gets(answers):
    table = readme_table()
    assert sorted(table) == sorted(answers)
    assert {code: (status, code) for code, status in table.items()} == answers


def test_a_failed_synchronous_execute_answers_the_tools_code_with_the_execution(tools, alice, settings, worker):
    settings.MCP_CONFIG = {**settings.MCP_CONFIG, "ALLOW_PRIVATE_URLS": False}
    response = client_for(alice).post(
        "/api/tools/summarize_content/execute/", {"parameters": {"url": "http://127.0.0.1/"}}, format="json"
    )
    assert answer(response) == (502, "blocked_address")
    assert response.json()["execution"]["status"] == "failed"
