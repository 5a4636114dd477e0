"""The Tasks extension on ToolExecution, driven by the official Python SDK client
(its extension hook, tests/mcp/tasks_client.py) over the 2026-07-28 wire.

Embedded default: uvicorn in this process, the embedded worker, the offline
provider. The production tests run the same flows against daphne and Celery
worker processes."""

from __future__ import annotations

from contextlib import asynccontextmanager

import anyio
import httpx2
import pytest
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from mcp_tools.models import ToolExecution
from tests.mcp import tasks_client
from tests.mcp.helpers import claude_held, structured
from tests.mcp.tasks_client import TasksClient
from tests.stack import wait_until


@asynccontextmanager
async def modern_client(url: str, token: str, *extensions):
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=120)) as http:
        async with Client(
            streamable_http_client(url, http_client=http), mode="auto", extensions=list(extensions)
        ) as client:
            assert client.session.protocol_version == "2026-07-28"
            yield client


def run_task_to_its_result(url: str, token: str):
    tasks = TasksClient()

    async def scenario():
        async with modern_client(url, token, tasks) as client:
            return await client.call_tool("generate_report", {"data": {"rain_mm": [3, 0, 12]}})

    return anyio.run(scenario), tasks


def check_task_is_the_execution(result, tasks: TasksClient, user) -> ToolExecution:
    [created] = tasks.created
    execution = ToolExecution.objects.get(pk=created.task_id)
    assert (execution.user, execution.status) == (user, "completed")
    assert created.status == "working" and created.ttl_ms > 0 and created.poll_interval_ms > 0
    assert tasks.polls[-1].status == "completed"
    report = structured(result)  # the same CallToolResult tools/call answers: outputSchema, text, _meta
    assert result.meta["execution_id"] == created.task_id and report == execution.result
    return execution


@pytest.mark.django_db(transaction=True)
def test_a_client_with_the_extension_gets_a_task_whose_id_is_the_execution(uvicorn_server, tools, alice, settings):
    settings.MCP_TASK_POLL_INTERVAL_MS = 50
    result, tasks = run_task_to_its_result(uvicorn_server.url + "/mcp", alice.auth_token.key)
    check_task_is_the_execution(result, tasks, alice)


@pytest.mark.django_db(transaction=True)
def test_a_working_task_shows_its_text_so_far_and_tasks_cancel_cancels_the_execution(
    uvicorn_server, tools, alice, settings, fake_anthropic
):
    claude_held(settings, fake_anthropic)

    async def scenario():
        async with modern_client(uvicorn_server.url + "/mcp", alice.auth_token.key, TasksClient()) as client:
            created = await client.session.call_tool(
                "generate_report", {"data": {"k": list(range(60))}}, allow_claimed=True
            )
            task_id = created.task_id
            with anyio.fail_after(30):
                while not (state := await tasks_client.get(client.session, task_id)).status_message.startswith("w0 w1"):
                    pass  # each poll is a round trip: working, then the first words (then it holds)
            await tasks_client.cancel(client.session, task_id)
            with anyio.fail_after(30):
                while (ended := await tasks_client.get(client.session, task_id)).status != "cancelled":
                    pass
            return task_id, state, ended

    task_id, working, ended = anyio.run(scenario)
    assert working.status == "working" and working.result is None
    execution = ToolExecution.objects.get(pk=task_id)
    assert execution.status == "cancelled"
    assert ended.result is None and ended.error is None


@pytest.mark.django_db(transaction=True)
def test_someone_elses_task_is_an_unknown_task(uvicorn_server, tools, alice, bob, settings):
    settings.MCP_TASK_POLL_INTERVAL_MS = 50
    _, tasks = run_task_to_its_result(uvicorn_server.url + "/mcp", alice.auth_token.key)

    async def scenario():
        async with modern_client(uvicorn_server.url + "/mcp", bob.auth_token.key, TasksClient()) as client:
            with pytest.raises(MCPError) as get_refused:
                await tasks_client.get(client.session, tasks.created[0].task_id)
            with pytest.raises(MCPError) as cancel_refused:
                await tasks_client.cancel(client.session, tasks.created[0].task_id)
            return get_refused.value, cancel_refused.value

    refused = anyio.run(scenario)
    assert [error.error.code for error in refused] == [-32602, -32602]


@pytest.mark.django_db(transaction=True)
def test_tasks_methods_need_the_extension_and_calls_without_it_answer_at_once(uvicorn_server, tools, alice):
    async def scenario():
        async with modern_client(uvicorn_server.url + "/mcp", alice.auth_token.key) as client:
            result = await client.call_tool("generate_report", {"data": {"a": 1}})
            with pytest.raises(MCPError) as refused:
                await tasks_client.get(client.session, result.meta["execution_id"])
            return result, refused.value

    result, refused = anyio.run(scenario)
    assert not result.is_error and structured(result)["model"] == "offline"
    assert refused.error.code == -32021
    assert refused.error.data["requiredCapabilities"]["extensions"] == {tasks_client.EXTENSION_ID: {}}


@pytest.mark.production
@pytest.mark.django_db(transaction=True)
def test_a_task_on_the_production_stack_is_the_execution_and_ends_with_its_result(stack, tools, alice):
    stack.anthropic.set_default({"tokens": 30, "delay_ms": 5})
    result, tasks = run_task_to_its_result(stack.http_url + "/mcp", alice.auth_token.key)
    execution = check_task_is_the_execution(result, tasks, alice)
    assert execution.result["report"] == "".join(f"w{i} " for i in range(30))
    wait_until(lambda: ToolExecution.objects.filter(status="completed").count() == 1, timeout=10, what="one row")
