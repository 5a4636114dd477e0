"""Clients nobody here wrote, against the real server: the official TypeScript SDK
(v2, with its Tasks extension package; tests/mcp/clients/ts_client.mjs) and the
MCP Inspector's CLI, both pinned in tools/node/package.json and installed into
.tools/ by ./dev (Node 22 from the npm registry).

The Python SDK client is the other tests' client (test_tasks, test_reattach,
test_oauth)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from mcp_tools.events import get_event_log
from mcp_tools.models import ToolExecution
from tests.mcp.helpers import ROOT, claude_held
from tests.stack import wait_until

TOOLS = ROOT / ".tools"
NODE = TOOLS / "node_modules" / ".bin" / "node"
INSPECTOR = TOOLS / "node_modules" / ".bin" / "mcp-inspector"


def node_env(tmp_path) -> dict[str, str]:
    env = {**os.environ, "MCP_NODE_TOOLS": str(TOOLS), "HOME": str(tmp_path)}  # the Inspector keeps state in ~
    env["PATH"] = f"{NODE.parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def typescript(tmp_path, scenario: str, url: str, *args: str) -> dict:
    process = subprocess.run(
        [str(NODE), str(ROOT / "tests/mcp/clients/ts_client.mjs"), scenario, url, *args],
        env=node_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    return json.loads(process.stdout)


def inspector_command(url: str, token: str, *args: str) -> list[str]:
    return [
        str(INSPECTOR),
        "--cli",
        url,
        "--transport",
        "http",
        "--protocol-era",
        "modern",
        "--header",
        f"Authorization: Bearer {token}",
        "--format",
        "json",
        *args,
    ]


def inspector(tmp_path, url: str, token: str, *args: str) -> dict:
    process = subprocess.run(
        inspector_command(url, token, *args), env=node_env(tmp_path), capture_output=True, text=True, timeout=120
    )
    assert process.returncode == 0, process.stdout[-2000:] + process.stderr[-2000:]
    return json.loads(process.stdout)


def test_the_node_tools_are_the_pinned_ones():
    pinned = json.loads((ROOT / "tools/node/package.json").read_text())["dependencies"]
    for package in (
        "node",
        "@modelcontextprotocol/client",
        "@modelcontextprotocol/ext-tasks",
        "@modelcontextprotocol/inspector",
    ):
        installed = json.loads((TOOLS / "node_modules" / package / "package.json").read_text())["version"]
        assert installed == pinned[package], f"{package}: run ./dev test (it installs tools/node/package.json)"


@pytest.mark.django_db(transaction=True)
def test_typescript_sdk_lists_and_calls_with_progress(uvicorn_server, tools, alice, settings, tmp_path):
    settings.OFFLINE_DELAY_S = 0.002
    url, token = uvicorn_server.url + "/mcp", alice.auth_token.key
    listed = typescript(tmp_path, "list", url, token)["tools"]
    assert listed == [
        {"name": "generate_report", "hasOutputSchema": True},
        {"name": "my_usage", "hasOutputSchema": True},
        {"name": "service_health", "hasOutputSchema": True},
        {"name": "summarize_content", "hasOutputSchema": True},
    ]
    called = typescript(tmp_path, "progress", url, token)
    report = called["result"]["structuredContent"]["report"]
    progress = called["progress"]
    assert [p["progress"] for p in progress] == sorted({p["progress"] for p in progress}) and len(progress) > 1
    assert progress[-1]["message"] == report == called["result"]["content"][0]["text"]
    assert ToolExecution.objects.get().result["report"] == report


@pytest.mark.django_db(transaction=True)
def test_typescript_sdk_runs_a_task_to_its_result_and_cancels_another(
    uvicorn_server, tools, alice, settings, tmp_path, fake_anthropic
):
    settings.MCP_TASK_POLL_INTERVAL_MS = 50
    url, token = uvicorn_server.url + "/mcp", alice.auth_token.key
    done = typescript(tmp_path, "task", url, token)
    assert done["kind"] == "task"
    execution = ToolExecution.objects.get(pk=done["taskId"])
    assert execution.status == "completed" and done["result"]["structuredContent"] == execution.result
    # The second task can only end by the cancel (CI run 3 of this session: a 1.4 s offline report
    # ended completed before the cancel arrived, and the row was rightly not cancelled).
    claude_held(settings, fake_anthropic)
    cancelled = typescript(tmp_path, "task-cancel", url, token)
    assert cancelled == {"kind": "task", "taskId": cancelled["taskId"], "outcome": "cancelled"}
    try:
        wait_until(
            lambda: ToolExecution.objects.get(pk=cancelled["taskId"]).status == "cancelled",
            timeout=20,
            what="the execution cancelled",
        )
    except TimeoutError as timed_out:  # say where it stood
        row = ToolExecution.objects.filter(pk=cancelled["taskId"]).values("status", "worker", "attempt").get()
        facts = get_event_log().facts(cancelled["taskId"])
        raise AssertionError(f"{timed_out}; row {row}; log {facts}") from timed_out


@pytest.mark.django_db(transaction=True)
def test_typescript_sdk_reattaches_a_dropped_call_by_reissuing_it(uvicorn_server, tools, alice, settings, tmp_path):
    settings.OFFLINE_DELAY_S = 0.01
    seen = typescript(tmp_path, "reattach", uvicorn_server.url + "/mcp", alice.auth_token.key)
    report = seen["result"]["structuredContent"]["report"]
    assert report.startswith(seen["resumedWith"]) and seen["resumedWith"].startswith(seen["seenBefore"])
    execution = ToolExecution.objects.get()  # one execution for the two calls
    assert execution.status == "completed" and str(execution.pk) == seen["result"]["_meta"]["execution_id"]


@pytest.mark.django_db(transaction=True)
def test_inspector_cli_lists_and_calls_through_a_task(uvicorn_server, tools, alice, settings, tmp_path):
    settings.MCP_TASK_POLL_INTERVAL_MS = 50
    url, token = uvicorn_server.url + "/mcp", alice.auth_token.key
    listed = inspector(tmp_path, url, token, "--method", "tools/list")["result"]["tools"]
    assert sorted(tool["name"] for tool in listed) == [
        "generate_report",
        "my_usage",
        "service_health",
        "summarize_content",
    ]
    assert all(tool["outputSchema"]["type"] == "object" for tool in listed)
    called = inspector(
        tmp_path,
        url,
        token,
        "--method",
        "tools/call",
        "--tool-name",
        "generate_report",
        "--tool-args-json",
        json.dumps({"data": {"a": [1, 2]}}),
    )["result"]
    execution = ToolExecution.objects.get()  # the Inspector takes tasks: created, polled to the end
    assert called["_meta"]["execution_id"] == str(execution.pk)
    assert called["structuredContent"] == execution.result and not called["isError"]


@pytest.mark.django_db(transaction=True)
def test_inspector_cli_killed_mid_task_and_run_again_with_its_key_gets_the_same_execution(
    uvicorn_server, tools, alice, settings, tmp_path
):
    settings.OFFLINE_DELAY_S, settings.MCP_TASK_POLL_INTERVAL_MS = 0.05, 50
    call = inspector_command(
        uvicorn_server.url + "/mcp",
        alice.auth_token.key,
        "--method",
        "tools/call",
        "--tool-name",
        "generate_report",
        "--tool-args-json",
        json.dumps({"data": {"k": list(range(60))}}),
        "--tool-metadata",
        "mcp-tools/idempotencyKey=inspector-1",
    )
    first = subprocess.Popen(call, env=node_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: ToolExecution.objects.filter(status="running").exists(), timeout=30, what="running")
    finally:
        first.kill()
        first.wait(10)
    again = subprocess.run(call, env=node_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr[-2000:]
    result = json.loads(again.stdout)["result"]
    execution = ToolExecution.objects.get()  # the client died; its execution did not, and was found again
    assert result["_meta"]["execution_id"] == str(execution.pk) and execution.status == "completed"
    assert result["structuredContent"] == execution.result


@pytest.mark.production
@pytest.mark.django_db(transaction=True)
def test_third_party_clients_on_the_production_stack(stack, tools, alice, tmp_path):
    stack.anthropic.set_default({"tokens": 20, "delay_ms": 5})
    url, token = stack.http_url + "/mcp", alice.auth_token.key
    done = typescript(tmp_path, "task", url, token)
    assert done["result"]["structuredContent"]["report"] == "".join(f"w{i} " for i in range(20))
    called = inspector(
        tmp_path,
        url,
        token,
        "--method",
        "tools/call",
        "--tool-name",
        "generate_report",
        "--tool-args-json",
        json.dumps({"data": {"b": 1}}),
    )["result"]
    assert not called["isError"]
    assert ToolExecution.objects.filter(status="completed").count() == 2


@pytest.mark.django_db(transaction=True)
def test_typescript_sdk_gets_its_token_by_oauth_with_pkce_and_its_metadata_document(
    uvicorn_server, tools, alice, settings, tmp_path
):
    from tests.mcp.oauth_helpers import client_document

    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "CIMD_METADATA_FETCHER": "tests.mcp.oauth_helpers.LoopbackDocumentFetcher",
    }
    url, redirect_uri = uvicorn_server.url + "/mcp", "http://127.0.0.1:33419/callback"
    with client_document(redirect_uri, name="TypeScript SDK test client") as client_id:
        seen = typescript(tmp_path, "oauth", url, client_id, redirect_uri, "alice", "pw-alice")
    assert sorted(seen["tools"]) == ["generate_report", "my_usage", "service_health", "summarize_content"]
    assert seen["request"] == {"client_id": client_id, "code_challenge_method": "S256", "resource": url}
    assert not seen["result"]["isError"] and ToolExecution.objects.get().user == alice
