"""MCP over streamable HTTP against the production topology: the official SDK
client talking to ``/mcp`` on a real daphne process, executions run by real
``celery worker`` processes, events over Redis, rows in PostgreSQL, Claude
played by the fake Messages API."""

from __future__ import annotations

import anyio
import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from mcp_tools.models import Tool, ToolExecution, ToolUsageStats
from tests.e2e.helpers import page_server
from tests.mcp.helpers import Progress, call_and_cancel, http_session, structured
from tests.stack import wait_until

pytestmark = [pytest.mark.production, pytest.mark.django_db(transaction=True)]


def mcp_url(stack) -> str:
    return stack.http_url + "/mcp"


def test_tools_list_is_the_active_tool_rows(stack, tools, alice):
    Tool.objects.create(name="retired_tool", description="gone", is_active=False)

    async def scenario():
        async with http_session(mcp_url(stack), alice.auth_token.key) as session:
            return (await session.list_tools()).tools

    listed = anyio.run(scenario)
    rows = {tool.name: tool for tool in Tool.objects.filter(is_active=True)}
    assert (
        sorted(tool.name for tool in listed)
        == sorted(rows)
        == ["generate_report", "my_usage", "service_health", "summarize_content"]
    )
    for tool in listed:
        assert tool.description == rows[tool.name].description
        assert tool.input_schema == rows[tool.name].parameters_schema


def test_each_tool_call_returns_its_result_as_an_execution_of_the_token_user(stack, tools, alice, bob):
    stack.anthropic.set_default({"tokens": 30, "delay_ms": 1})

    async def scenario(url: str):
        async with http_session(mcp_url(stack), alice.auth_token.key) as session:
            report = await session.call_tool("generate_report", {"data": {"sales": [3, 5, 8]}})
            summary = await session.call_tool("summarize_content", {"url": url})
            return report, summary

    with page_server() as page_url:
        report, summary = anyio.run(scenario, page_url)
    assert not report.is_error and not summary.is_error
    expected_text = "".join(f"w{i} " for i in range(30))
    assert structured(report)["report"] == expected_text
    assert structured(summary)["summary"] == expected_text and summary.structured_content["url"] == page_url
    executions = {e.tool.name: e for e in ToolExecution.objects.filter(user=alice)}
    assert sorted(executions) == ["generate_report", "summarize_content"]
    assert not ToolExecution.objects.filter(user=bob).exists()
    for name, result in (("generate_report", report), ("summarize_content", summary)):
        execution = executions[name]
        assert execution.status == "completed" and execution.result == result.structured_content
        assert result.meta["execution_id"] == str(execution.pk)
        stats = ToolUsageStats.objects.get(tool__name=name)
        assert (stats.total_executions, stats.successful_executions, stats.output_tokens) == (1, 1, 30)


def test_progress_notifications_carry_the_text_so_far_before_the_result(stack, tools, alice):
    stack.anthropic.set_default({"tokens": 60, "delay_ms": 15})
    progress = Progress()
    returned_after: list[int] = []

    async def scenario():
        async with http_session(mcp_url(stack), alice.auth_token.key) as session:
            result = await session.call_tool("generate_report", {"data": {"k": 1}}, progress_callback=progress)
            returned_after.append(len(progress.updates))
            return result

    result = anyio.run(scenario)
    final = structured(result)["report"]
    assert final == "".join(f"w{i} " for i in range(60))
    partial = [message for _, message in progress.updates if len(message) < len(final)]
    assert partial, progress.updates
    assert all(final.startswith(message) for _, message in progress.updates)
    counts = [count for count, _ in progress.updates]
    assert counts == list(range(1, len(counts) + 1))  # one per delta, rising
    assert progress.updates[-1][1] == final
    assert returned_after == [len(progress.updates)]  # every notification arrived before the result


def test_cancelling_a_call_cancels_its_execution(stack, tools, alice):
    stack.anthropic.set_default({"tokens": 400, "delay_ms": 20})
    progress = Progress()

    async def scenario():
        async with http_session(mcp_url(stack), alice.auth_token.key) as session:
            await call_and_cancel(session, "generate_report", {"data": {"k": 2}}, progress)
            # The session stays usable after a cancelled call.
            return (await session.list_tools()).tools

    assert anyio.run(scenario)
    execution = ToolExecution.objects.get(user=alice)
    wait_until(
        lambda: ToolExecution.objects.get(pk=execution.pk).status == "cancelled",
        timeout=20,
        what="the execution to be cancelled",
    )
    execution.refresh_from_db()
    assert execution.events[-1]["type"] == "execution.cancelled"
    assert sum(e["type"] == "execution.delta" for e in execution.events) < 400
    stats = ToolUsageStats.objects.get(tool__name="generate_report")
    assert (stats.total_executions, stats.cancelled_executions, stats.successful_executions) == (1, 1, 0)


def test_a_failing_execution_is_a_tool_error_with_its_code(stack, tools, alice):
    stack.anthropic.set_default({"status": 401, "error_type": "authentication_error"})

    async def scenario():
        async with http_session(mcp_url(stack), alice.auth_token.key) as session:
            return await session.call_tool("generate_report", {"data": {"k": 3}})

    result = anyio.run(scenario)
    assert result.is_error
    error = structured(result)["error"]
    assert error["code"] == "llm_auth_failed" and "401" in error["message"]
    execution = ToolExecution.objects.get(user=alice)
    assert execution.status == "failed" and execution.error_code == "llm_auth_failed"
    assert result.meta["execution_id"] == str(execution.pk)


def test_requests_without_a_valid_token_are_refused_with_401(stack, tools, alice):
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}},
    }
    headers = {"accept": "application/json, text/event-stream"}
    for auth in ({}, {"authorization": "Bearer not-a-token"}, {"authorization": f"Token {alice.auth_token.key}"}):
        response = httpx2.post(mcp_url(stack), json=initialize, headers={**headers, **auth}, timeout=10)
        assert response.status_code == 401, (auth, response.text)
        assert response.headers["www-authenticate"].startswith("Bearer ")
    alice.is_active = False
    alice.save()
    response = httpx2.post(
        mcp_url(stack),
        json=initialize,
        timeout=10,
        headers={**headers, "authorization": f"Bearer {alice.auth_token.key}"},
    )
    assert response.status_code == 401


def test_the_sdk_client_without_a_token_is_refused(stack, tools):
    statuses: list[int] = []

    async def record(response: httpx2.Response) -> None:
        statuses.append(response.status_code)

    async def scenario():
        async with httpx2.AsyncClient(event_hooks={"response": [record]}) as http:
            async with streamable_http_client(mcp_url(stack), http_client=http) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()

    with pytest.raises(Exception) as caught:
        anyio.run(scenario)
    assert (
        caught.group_contains(MCPError)
        if isinstance(caught.value, BaseExceptionGroup)
        else isinstance(caught.value, MCPError)
    )
    assert statuses == [401]
    assert not ToolExecution.objects.exists()


def test_hosts_and_origins_outside_allowed_hosts_are_refused(stack, tools, alice):
    headers = {"authorization": f"Bearer {alice.auth_token.key}", "content-type": "application/json"}
    foreign_host = httpx2.post(mcp_url(stack), content=b"{}", headers={**headers, "host": "evil.example"})
    assert foreign_host.status_code == 421
    foreign_origin = httpx2.post(mcp_url(stack), content=b"{}", headers={**headers, "origin": "http://evil.example"})
    assert foreign_origin.status_code == 403
