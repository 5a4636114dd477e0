"""MCP over streamable HTTP in the embedded default: the official SDK client
against ``config.asgi:application`` served by a real uvicorn (ASGI lifespan),
executions run by the embedded worker thread, the offline provider."""

from __future__ import annotations

import anyio
import httpx2
import pytest
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client

from mcp_tools.mcp.asgi import mcp_http
from mcp_tools.models import ToolExecution, ToolUsageStats
from tests.mcp.helpers import Progress, call_and_cancel, claude_held, http_session, structured
from tests.stack import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def test_uvicorn_lifespan_runs_the_session_manager_from_startup_to_shutdown(uvicorn_server, tools, alice):
    assert mcp_http.is_running()  # started by lifespan.startup, before any /mcp request

    async def scenario():
        async with http_session(uvicorn_server.url + "/mcp", alice.auth_token.key) as session:
            return await session.call_tool("generate_report", {"data": {"a": 1}})

    assert not anyio.run(scenario).is_error
    uvicorn_server.server.should_exit = True
    uvicorn_server.thread.join(20)
    assert not uvicorn_server.thread.is_alive()
    assert not mcp_http.is_running()  # stopped by lifespan.shutdown


def test_call_streams_progress_and_returns_the_result_as_the_users_execution(uvicorn_server, tools, alice, settings):
    settings.OFFLINE_DELAY_S = 0.002
    progress = Progress()

    async def scenario():
        async with http_session(uvicorn_server.url + "/mcp", alice.auth_token.key) as session:
            listed = [tool.name for tool in (await session.list_tools()).tools]
            result = await session.call_tool(
                "generate_report", {"data": {"rain_mm": [3, 0, 12]}}, progress_callback=progress
            )
            return listed, result

    listed, result = anyio.run(scenario)
    assert sorted(listed) == ["generate_report", "my_usage", "service_health", "summarize_content"]
    report = structured(result)
    assert not result.is_error and report["model"] == "offline"
    assert any(len(message) < len(report["report"]) for _, message in progress.updates)
    assert progress.updates[-1][1] == report["report"]
    execution = ToolExecution.objects.get()
    assert (execution.user, execution.status, execution.result) == (alice, "completed", report)
    assert ToolUsageStats.objects.get(tool__name="generate_report").total_executions == 1


def test_calls_refused_before_an_execution_starts_are_tool_errors_with_their_codes(
    uvicorn_server, tools, alice, settings
):
    settings.MCP_CONFIG = {**settings.MCP_CONFIG, "RATE_LIMIT_PER_MINUTE": 1}

    async def scenario():
        async with http_session(uvicorn_server.url + "/mcp", alice.auth_token.key) as session:
            return [
                await session.call_tool("no_such_tool", {}),
                await session.call_tool("generate_report", {"data": "not an object", "extra": 1}),
                # One a minute: of three calls within a second, at least one lands in a window already used
                # (two may pass when the minute turns between them).
                *[await session.call_tool("generate_report", {"data": {"a": n}}) for n in range(3)],
            ]

    unknown, invalid, *calls = anyio.run(scenario)
    assert unknown.is_error and structured(unknown)["error"]["code"] == "unknown_tool"
    assert invalid.is_error and structured(invalid)["error"]["code"] == "invalid_parameters"
    assert {p["field"] for p in invalid.structured_content["error"]["details"]} == {"data", "extra"}
    accepted = [call for call in calls if not call.is_error]
    limited = [structured(call)["error"] for call in calls if call.is_error]
    assert not calls[0].is_error and 1 <= len(accepted) <= 2
    assert limited and all(error["code"] == "rate_limited" and error["retry_after"] > 0 for error in limited)
    assert ToolExecution.objects.count() == len(accepted)  # only the accepted calls became executions


def test_cancelling_a_call_cancels_the_execution(uvicorn_server, tools, alice, settings, fake_anthropic):
    claude_held(settings, fake_anthropic)
    progress = Progress()

    async def scenario():
        async with http_session(uvicorn_server.url + "/mcp", alice.auth_token.key) as session:
            await call_and_cancel(session, "generate_report", {"data": {"k": list(range(50))}}, progress)

    anyio.run(scenario)
    wait_until(lambda: ToolExecution.objects.get().status == "cancelled", timeout=20, what="cancelled")
    assert ToolUsageStats.objects.get(tool__name="generate_report").cancelled_executions == 1


def test_a_2026_protocol_client_lists_calls_and_cancels_without_a_session(uvicorn_server, tools, alice, settings):
    settings.OFFLINE_DELAY_S = 0.02
    progress = Progress()

    async def scenario():
        headers = {"Authorization": f"Bearer {alice.auth_token.key}"}
        async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=120)) as http:
            transport = streamable_http_client(uvicorn_server.url + "/mcp", http_client=http)
            async with Client(transport, mode="auto") as client:
                version = client.session.protocol_version
                listed = [tool.name for tool in (await client.list_tools()).tools]
                done = await client.call_tool("generate_report", {"data": {"a": 1}})
                async with anyio.create_task_group() as tasks:  # closing the request cancels it
                    tasks.start_soon(client.call_tool, "generate_report", {"data": {"b": 2}}, None, progress)
                    with anyio.fail_after(30):
                        await progress.first.wait()
                    tasks.cancel_scope.cancel()
                return version, listed, done

    version, listed, done = anyio.run(scenario)
    assert version == "2026-07-28"
    assert sorted(listed) == ["generate_report", "my_usage", "service_health", "summarize_content"]
    assert not done.is_error and "report" in done.structured_content
    cancelled = ToolExecution.objects.exclude(pk=done.meta["execution_id"]).get()
    wait_until(lambda: ToolExecution.objects.get(pk=cancelled.pk).status == "cancelled", timeout=20, what="cancelled")
