"""A dropped ``tools/call`` re-issued with the same idempotency key re-attaches to its execution.

The 2026-07-28 protocol resumes nothing: the official Python SDK client drops
the call (its response stream closes), then sends the same request again.
"""

from __future__ import annotations

import anyio
import pytest

from mcp_tools.mcp.calls import IDEMPOTENCY_META_KEY
from mcp_tools.models import ToolExecution
from tests.mcp.helpers import Progress, structured
from tests.mcp.tasks_client import TasksClient
from tests.mcp.test_tasks import modern_client
from tests.stack import wait_until

ARGS = {"data": {"tide_m": list(range(40))}}


def drop_then_reissue(url: str, token: str, key: str):
    first, second = Progress(), Progress()

    async def scenario():
        async with modern_client(url, token) as client:
            async with anyio.create_task_group() as tasks:  # the connection drops mid-stream
                tasks.start_soon(
                    lambda: client.call_tool(
                        "generate_report", ARGS, progress_callback=first, meta={IDEMPOTENCY_META_KEY: key}
                    )
                )
                with anyio.fail_after(30):
                    await first.first.wait()
                tasks.cancel_scope.cancel()
            return await client.call_tool(
                "generate_report", ARGS, progress_callback=second, meta={IDEMPOTENCY_META_KEY: key}
            )

    return anyio.run(scenario), first, second


def check_reattached(result, first: Progress, second: Progress) -> ToolExecution:
    report = structured(result)["report"]
    execution = ToolExecution.objects.get()  # one execution: Claude was asked once
    assert (execution.status, str(execution.pk)) == ("completed", result.meta["execution_id"])
    seen_before = first.updates[-1][1]
    resumed_with = second.updates[0][1]
    assert report.startswith(resumed_with) and resumed_with.startswith(seen_before)  # nothing lost, nothing twice
    assert second.updates[-1][1] == report
    return execution


@pytest.mark.django_db(transaction=True)
def test_a_dropped_call_reissued_with_its_key_continues_the_same_execution(uvicorn_server, tools, alice, settings):
    settings.OFFLINE_DELAY_S = 0.01
    result, first, second = drop_then_reissue(uvicorn_server.url + "/mcp", alice.auth_token.key, "call-1")
    check_reattached(result, first, second)


@pytest.mark.django_db(transaction=True)
def test_a_key_reused_for_other_arguments_is_a_conflict_and_starts_nothing(uvicorn_server, tools, alice, settings):
    settings.MCP_TASK_POLL_INTERVAL_MS = 50

    async def scenario():
        async with modern_client(uvicorn_server.url + "/mcp", alice.auth_token.key, TasksClient()) as client:
            done = await client.call_tool("generate_report", ARGS, meta={IDEMPOTENCY_META_KEY: "k"})
            again = await client.call_tool("generate_report", ARGS, meta={IDEMPOTENCY_META_KEY: "k"})
            other = await client.call_tool("generate_report", {"data": {}}, meta={IDEMPOTENCY_META_KEY: "k"})
            return done, again, other

    done, again, other = anyio.run(scenario)
    assert again.meta["execution_id"] == done.meta["execution_id"]  # a finished one answers again, as a task too
    assert structured(again) == structured(done)
    assert other.is_error and structured(other)["error"]["code"] == "idempotency_conflict"
    assert ToolExecution.objects.count() == 1


@pytest.mark.production
@pytest.mark.django_db(transaction=True)
def test_a_dropped_call_reattaches_across_the_production_stack(stack, tools, alice):
    stack.anthropic.set_default({"tokens": 200, "delay_ms": 10})
    result, first, second = drop_then_reissue(stack.http_url + "/mcp", alice.auth_token.key, "prod-1")
    execution = check_reattached(result, first, second)
    assert execution.result["report"] == "".join(f"w{i} " for i in range(200))
    wait_until(lambda: ToolExecution.objects.count() == 1, timeout=5, what="still one execution")
