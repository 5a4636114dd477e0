"""``manage.py mcp_stdio``: the same MCP server over stdin/stdout, spawned the
way Claude Desktop and Claude Code spawn it (the official SDK's stdio client).

The embedded tests run the command on the embedded default in a temporary
``DATA_DIR`` (its own SQLite file, read back here with ``sqlite3``); the
production test points it at the running stack (PostgreSQL, Redis, Celery
worker processes) and checks the rows with the ORM.
"""

from __future__ import annotations

import json
import queue
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import anyio
import pytest

from mcp_tools.models import ToolExecution, ToolUsageStats
from tests.e2e.helpers import page_server
from tests.mcp.helpers import ROOT, Progress, embedded_env, prepare_embedded_project, stdio_session, structured


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> dict[str, str]:
    """The embedded default in a temp DATA_DIR: migrated, tools loaded, user ``ann``."""
    env = embedded_env(tmp_path_factory.mktemp("mcp-stdio"), MCP_ALLOW_PRIVATE_URLS="true")
    prepare_embedded_project(env, "ann")
    return env


def rows(env: dict[str, str], sql: str, *args) -> list[tuple]:
    with sqlite3.connect(Path(env["DATA_DIR"]) / "db.sqlite3") as db:
        return db.execute(sql, args).fetchall()


def test_stdio_lists_and_calls_each_tool_as_the_configured_user(project):
    progress = Progress()

    async def scenario(url: str):
        async with stdio_session({**project, "OFFLINE_DELAY_S": "0.002"}, "--user", "ann") as session:
            listed = (await session.list_tools()).tools
            report = await session.call_tool(
                "generate_report", {"data": {"tide_m": [1.2, 3.4]}}, progress_callback=progress
            )
            summary = await session.call_tool("summarize_content", {"url": url})
            return listed, report, summary

    with page_server() as page_url:
        listed, report, summary = anyio.run(scenario, page_url)
    assert sorted(tool.name for tool in listed) == [
        "generate_report",
        "my_usage",
        "service_health",
        "summarize_content",
    ]
    assert all(tool.input_schema["type"] == "object" for tool in listed)
    declared = {tool.name: tool for tool in listed}
    assert not report.is_error and structured(report, declared["generate_report"])["model"] == "offline"
    assert not summary.is_error and structured(summary, declared["summarize_content"])["url"] == page_url
    assert progress.updates and progress.updates[-1][1] == report.structured_content["report"]
    for result in (report, summary):
        [(username, status, stored)] = rows(
            project,
            "SELECT u.username, e.status, e.result FROM mcp_tools_toolexecution e "
            "JOIN auth_user u ON u.id = e.user_id WHERE e.id = ?",
            result.meta["execution_id"].replace("-", ""),
        )
        assert (username, status, json.loads(stored)) == ("ann", "completed", result.structured_content)


def test_stdio_writes_nothing_but_protocol_frames_on_stdout(project):
    requests = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {"name": "generate_report", "arguments": {"data": {"a": 1}}, "_meta": {"progressToken": "t"}},
        },
    ]
    process = subprocess.Popen(
        [sys.executable, "manage.py", "mcp_stdio", "--user", "ann"],
        cwd=ROOT,
        env=project,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    try:
        process.stdin.write("".join(json.dumps(r) + "\n" for r in requests))
        process.stdin.flush()
        frames = []
        while not any(frame.get("id") == 3 for frame in frames):
            frames.append(json.loads(lines.get(timeout=60)))  # every stdout line is one JSON-RPC frame
        process.stdin.close()
        assert process.wait(30) == 0
    finally:
        process.kill()
    assert all(frame["jsonrpc"] == "2.0" for frame in frames)
    assert [f["id"] for f in frames if "id" in f] == [1, 2, 3]
    assert any(f.get("method") == "notifications/progress" for f in frames)
    assert lines.empty()
    assert "acting as ann" in process.stderr.read()  # logging goes to stderr


def test_stdio_refuses_a_user_that_does_not_exist(project):
    process = subprocess.run(
        [sys.executable, "manage.py", "mcp_stdio", "--user", "ghost"],
        cwd=ROOT,
        env=project,
        input="",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert process.returncode != 0
    assert process.stdout == ""
    assert "No active user is named 'ghost'" in process.stderr


@pytest.mark.production
@pytest.mark.django_db(transaction=True)
def test_stdio_runs_calls_on_the_production_stack_as_the_user(stack, tools, alice):
    stack.anthropic.set_default({"tokens": 40, "delay_ms": 5})
    progress = Progress()

    async def scenario():
        async with stdio_session(stack.env, "--user", alice.username) as session:
            listed = (await session.list_tools()).tools
            return listed, await session.call_tool("generate_report", {"data": {"k": 1}}, progress_callback=progress)

    listed, result = anyio.run(scenario)
    assert sorted(tool.name for tool in listed) == [
        "generate_report",
        "my_usage",
        "service_health",
        "summarize_content",
    ]
    assert structured(result)["report"] == "".join(f"w{i} " for i in range(40))
    assert any(len(message) < len(result.structured_content["report"]) for _, message in progress.updates)
    execution = ToolExecution.objects.get()
    assert (execution.user, execution.status, str(execution.pk)) == (alice, "completed", result.meta["execution_id"])
    assert ToolUsageStats.objects.get(tool__name="generate_report").total_executions == 1
