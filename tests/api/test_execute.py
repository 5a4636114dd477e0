"""POST /api/tools/{id}/execute/ and execute_async/ on the embedded default."""

from __future__ import annotations

import pytest

from mcp_tools.models import Tool, ToolExecution, ToolUsageStats
from tests.api.conftest import REPORT_PARAMETERS, client_for, token_headers, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]

EXECUTION_FIELDS = {
    "id",
    "tool_name",
    "parameters",
    "result",
    "error",
    "status",
    "duration_ms",
    "created_at",
    "completed_at",
    "error_code",
    "attempt",
    "cached",
    "input_tokens",
    "output_tokens",
}


def execute(user, tool: str = "generate_report", **body):
    body.setdefault("parameters", REPORT_PARAMETERS)
    return client_for(user).post(f"/api/tools/{tool}/execute/", body, format="json")


def test_execute_runs_and_answers_200_with_the_finished_execution(tools, alice):
    response = execute(alice)
    assert response.status_code == 200
    data = response.json()
    assert set(data) == EXECUTION_FIELDS
    assert data["status"] == "completed" and data["tool_name"] == "generate_report"
    assert data["parameters"] == REPORT_PARAMETERS
    assert data["result"]["model"] == "offline" and data["result"]["report"]
    assert data["error"] is None and data["error_code"] == ""
    assert data["attempt"] == 1 and data["cached"] is False
    assert data["output_tokens"] > 0 and data["completed_at"]
    execution = ToolExecution.objects.get(pk=data["id"])
    assert execution.user == alice and execution.worker == ""
    assert execution.events[-1]["type"] == "execution.completed"
    stats = ToolUsageStats.objects.get(tool__name="generate_report")
    assert (stats.total_executions, stats.successful_executions) == (1, 1)
    assert stats.output_tokens == data["output_tokens"] and stats.input_tokens == data["input_tokens"]


def test_second_execute_is_answered_from_cache_unless_use_cache_is_false(tools, alice):
    first = execute(alice).json()
    cached = execute(alice).json()
    fresh = execute(alice, use_cache=False).json()
    assert cached["cached"] is True and cached["result"] == first["result"]
    assert cached["output_tokens"] == 0  # no tokens spent on a cache hit
    assert fresh["cached"] is False and fresh["output_tokens"] > 0
    stats = ToolUsageStats.objects.get(tool__name="generate_report")
    assert (stats.total_executions, stats.cached_executions) == (3, 1)


def test_invalid_parameters_are_400_with_the_json_schema_problems(tools, alice):
    response = execute(alice, parameters={"data": "not an object", "extra": 1})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_parameters"
    fields = {problem["field"] for problem in error["details"]}
    assert fields == {"data", "extra"}
    assert all(problem["message"] for problem in error["details"])
    missing = execute(alice, parameters={}).json()["error"]
    assert missing["code"] == "invalid_parameters" and missing["details"][0]["field"] == "data"
    assert not ToolExecution.objects.exists()


def test_parameters_that_are_not_an_object_are_400_invalid_request(tools, alice):
    response = execute(alice, parameters=[1, 2])
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and "parameters" in error["details"]


def test_failed_execution_answers_502_with_what_failed_and_the_execution(tools, alice, settings, fake_anthropic):
    settings.LLM_PROVIDER = "anthropic"
    settings.ANTHROPIC_API_KEY = "test-key"
    settings.ANTHROPIC_BASE_URL = fake_anthropic.url
    fake_anthropic.set_default({"status": 400, "error_message": "prompt is too long"})
    response = execute(alice)
    assert response.status_code == 502
    body = response.json()
    assert body["error"]["code"] == "llm_error"
    assert "prompt is too long" in body["error"]["message"]
    assert body["execution"]["status"] == "failed" and body["execution"]["error_code"] == "llm_error"
    stats = ToolUsageStats.objects.get(tool__name="generate_report")
    assert (stats.total_executions, stats.failed_executions) == (1, 1)


def test_rate_limited_execute_is_429_with_retry_after(tools, alice, settings):
    settings.MCP_CONFIG = {**settings.MCP_CONFIG, "RATE_LIMIT_PER_MINUTE": 1}
    assert execute(alice).status_code == 200
    response = execute(alice)
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(response["Retry-After"]) <= 60
    assert response.json()["error"]["retry_after"] > 0


async def test_execute_async_answers_202_and_a_worker_completes_it(tools, alice, asgi_http):
    response = await asgi_http.post(
        "/api/tools/generate_report/execute_async/",
        headers=token_headers(alice),
        json={"parameters": REPORT_PARAMETERS, "use_cache": False},
    )
    assert response.status_code == 202
    body = response.json()
    assert set(body) == {"execution_id", "task_id"}
    execution = await ToolExecution.objects.aget(pk=body["execution_id"])
    assert execution.celery_task_id == body["task_id"] and execution.user_id == alice.pk

    async def finished():
        status = await asgi_http.get(f"/api/executions/{body['execution_id']}/status/", headers=token_headers(alice))
        return status.json() if status.json()["status"] == "completed" else None

    status = await wait_for(finished, what="the worker to complete the execution")
    assert status["result"]["report"] and status["error"] is None


async def test_execute_with_async_execution_true_queues_like_execute_async(tools, alice, asgi_http):
    response = await asgi_http.post(
        "/api/tools/generate_report/execute/",
        headers=token_headers(alice),
        json={"parameters": REPORT_PARAMETERS, "async_execution": True},
    )
    assert response.status_code == 202
    execution_id = response.json()["execution_id"]

    async def ended():
        return (await ToolExecution.objects.aget(pk=execution_id)).is_terminal

    await wait_for(ended, what="the queued execution to end")
    assert (await ToolExecution.objects.aget(pk=execution_id)).status == "completed"


def test_execute_async_with_invalid_parameters_is_400_and_records_nothing(tools, alice):
    response = client_for(alice).post("/api/tools/generate_report/execute_async/", {"parameters": {}}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_parameters"
    assert not ToolExecution.objects.exists()


def test_execute_by_numeric_id_matches_the_articles_route(tools, alice):
    tool = Tool.objects.get(name="generate_report")
    response = client_for(alice).post(
        f"/api/tools/{tool.pk}/execute/", {"parameters": REPORT_PARAMETERS}, format="json"
    )
    assert response.status_code == 200 and response.json()["tool_name"] == "generate_report"


def test_a_repeated_idempotency_key_returns_the_first_execution_and_another_request_under_it_is_409(tools, alice):
    def queue(data, key="order-17"):
        return client_for(alice).post(
            "/api/tools/generate_report/execute_async/",
            {"parameters": {"data": data}},
            format="json",
            HTTP_IDEMPOTENCY_KEY=key,
        )

    first = queue({"a": 1})
    again = queue({"a": 1})
    assert first.status_code == again.status_code == 202
    assert again.json()["execution_id"] == first.json()["execution_id"]
    assert ToolExecution.objects.filter(user=alice).count() == 1
    conflict = queue({"a": 2})
    assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "idempotency_conflict"
    assert queue({"a": 2}, key="order-18").status_code == 202  # a new key, a new execution
    synchronous = client_for(alice).post(
        "/api/tools/generate_report/execute/",
        {"parameters": {"data": {"a": 1}}},
        format="json",
        HTTP_IDEMPOTENCY_KEY="order-17",
    )
    assert synchronous.status_code == 200 and synchronous.json()["id"] == first.json()["execution_id"]
