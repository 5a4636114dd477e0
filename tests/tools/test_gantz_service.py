"""A Gantz file just works: its script and http tools through the whole service, in both topologies.

Every test here runs twice: on the embedded default (``manage.py serve``) and
on the production topology (daphne, ``celery worker`` processes, Redis,
PostgreSQL); see ``conftest.py``. The tools are ``gantz_fixture.yaml``'s,
the user's side is WebSocket, REST, server-sent events, MCP, ``manage.py
run_tool`` and the admin.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import anyio
import psutil

from tests.e2e.helpers import recv, send, ws_connect
from tests.gantz.pids import wait_until_gone
from tests.mcp.helpers import Progress, http_session
from tests.stack import ROOT, free_port, http_ok, wait_until
from tests.tools.conftest import EMBEDDED_MAX_CONCURRENT
from tests.tools.fixture import TOKEN, WORKDIR
from tests.tools.service import pids_from, stream_text, structured, write_line


def completed(messages: list[dict]) -> dict:
    assert messages[-1]["type"] == "execution.completed", messages[-1]
    return messages[-1]


def lines_text(n: int) -> str:
    return "".join(f"line {i:06d}\n" for i in range(1, n + 1))


def test_script_output_streams_while_the_process_runs(service, fifo):
    with service.ws("alice") as ws:
        ws.send({"type": "execute", "tool": "gated", "parameters": {"gate": str(fifo)}, "request_id": "g"})
        accepted = ws.recv()
        first = ws.until(lambda m: m["type"] == "execution.delta")
        [pid] = pids_from(first[-1]["text"])
        assert psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE  # still running
        write_line(fifo, "the line the test wrote")
        rest = ws.until_terminal()
    assert accepted["type"] == "execution.accepted" and accepted["tool"] == "gated"
    messages = first + rest
    result = completed(messages)["result"]
    assert result == {"output": f"pid {pid}\ngot the line the test wrote\n", "exit_code": 0}
    assert stream_text(messages) == result["output"]
    assert [m["status"] for m in messages if m["type"] == "execution.status"] == ["pending", "running"]


def test_rest_execute_runs_args_with_defaults_and_the_working_dir(service):
    with service.api("alice") as api:
        greeted = api.post("/api/tools/greet/execute/", json={"parameters": {"name": "Ada"}})
        custom = api.post(
            "/api/tools/greet/execute/", json={"parameters": {"name": "Ada", "greeting": "Bonjour", "times": 3}}
        )
        where = api.post("/api/tools/where_am_i/execute/", json={})
    assert greeted.status_code == 200, greeted.text
    assert greeted.json()["result"] == {"output": "Hello, Ada! (1)\n", "exit_code": 0}
    assert greeted.json()["parameters"] == {"name": "Ada"}  # as given; the defaults are the tool's business
    assert custom.json()["result"]["output"] == "Bonjour, Ada! (3)\n"
    assert where.json()["result"] == {"output": f"{WORKDIR}\n", "exit_code": 0}


def test_rest_execute_async_then_the_event_stream_and_the_status(service):
    from tests.api.conftest import parse_sse

    with service.api("alice") as api:
        queued = api.post("/api/tools/lines/execute_async/", json={"parameters": {"n": 2000}})
        assert queued.status_code == 202, queued.text
        execution_id = queued.json()["execution_id"]
        stream = api.get(f"/api/executions/{execution_id}/events/")
        status = api.get(f"/api/executions/{execution_id}/status/").json()
    events = [event["data"] for event in parse_sse(stream.text)[0]]
    assert [event["seq"] for event in events] == list(range(1, len(events) + 1))
    result = completed(events)["result"]
    assert result == {"output": lines_text(2000), "exit_code": 0}
    assert stream_text(events) == result["output"]
    assert status == {"id": execution_id, "status": "completed", "result": result, "error": None}


def test_http_tools_send_method_url_headers_and_body_and_extract_json(service):
    with service.api("alice") as api:
        echoed = api.post(
            "/api/tools/http_echo/execute/", json={"parameters": {"q": "a b&c=d/é", "tag": "t-1"}}
        ).json()["result"]
        posted = api.post("/api/tools/http_post/execute/", json={"parameters": {"text": 'say "hi"'}}).json()["result"]
        picked = service.execute_ws("alice", "http_pick")
    assert echoed["status"] == 200 and set(echoed) == {"output", "status"}
    request = json.loads(echoed["output"])
    assert request["method"] == "GET" and request["args"] == {"q": "a b&c=d/é"}  # one query value, encoded
    assert request["query"] == "q=a%20b%26c%3Dd%2F%C3%A9" and request["headers"]["x-tag"] == "t-1"
    assert posted["status"] == 200 and json.loads(posted["output"]) == {"text": 'say "hi"', "count": 2}
    assert completed(picked)["result"] == {"output": "second", "status": 200}
    assert stream_text(picked) == "second"


def test_mcp_tools_call_answers_with_the_result_and_streams_progress(service):
    progress = Progress()

    async def scenario():
        async with http_session(service.http_url + "/mcp", service.tokens["alice"]) as session:
            listed = {tool.name: tool for tool in (await session.list_tools()).tools}
            lines = await session.call_tool("lines", {"n": 300}, progress_callback=progress)
            picked = await session.call_tool("http_pick", {})
            failed = await session.call_tool("fail_with", {"code": 4})
            return listed, lines, picked, failed

    listed, lines, picked, failed = anyio.run(scenario)
    assert listed["lines"].input_schema["required"] == ["n"] and "greet" in listed and "http_echo" in listed
    assert structured(lines) == {"output": lines_text(300), "exit_code": 0} and not lines.is_error
    assert progress.updates and all(lines_text(300).startswith(message) for _, message in progress.updates)
    assert structured(picked) == {"output": "second", "status": 200}
    assert failed.is_error and structured(failed)["error"]["code"] == "tool_failed"
    assert "exited with code 4" in failed.structured_content["error"]["message"]


def test_run_tool_prints_the_result_json_and_fails_with_one_line(service):
    greeted = service.run_tool("greet", "--param", "name=Gantz", "--param", "times=2")
    picked = service.run_tool("http_pick")
    failed = service.run_tool("fail_with")
    assert greeted.returncode == 0, greeted.stderr
    assert json.loads(greeted.stdout) == {"output": "Hello, Gantz! (2)\n", "exit_code": 0}
    assert json.loads(picked.stdout) == {"output": "second", "status": 200}
    assert failed.returncode == 1 and failed.stdout == ""
    assert failed.stderr == "error: tool_failed: Tool 'fail_with' exited with code 3.\n"
    with service.api("alice") as api:
        history = api.get("/api/executions/", params={"tool": "greet"}).json()["results"]
    assert any(e["parameters"] == {"name": "Gantz", "times": 2} and e["status"] == "completed" for e in history)


def test_history_and_usage_stats_count_script_and_http_runs(service):
    with service.api("bob") as api:
        before = api.get("/api/tools/fail_with/").json()["stats"]
        ran = [service.execute_ws("bob", "fail_with", {"code": code})[-1] for code in (0, 5)]
        after = api.get("/api/tools/fail_with/").json()["stats"]
        history = api.get("/api/executions/", params={"tool": "fail_with"}).json()["results"]
    assert [event["type"] for event in ran] == ["execution.completed", "execution.failed"]
    assert after["total_executions"] - before["total_executions"] == 2
    assert after["successful_executions"] - before["successful_executions"] == 1
    assert after["failed_executions"] - before["failed_executions"] == 1
    mine = {e["id"]: e for e in history}
    succeeded, failed = (mine[event["execution_id"]] for event in ran)
    assert succeeded["result"] == {"output": "partial output\n\nsomething broke\n", "exit_code": 0}
    assert (failed["status"], failed["error_code"]) == ("failed", "tool_failed")
    assert failed["result"] == {"output": "partial output\n\nsomething broke\n", "exit_code": 5}


def test_the_admin_lists_and_shows_gantz_tools_with_variables_unexpanded(service):
    execution_id = completed(service.execute_ws("alice", "token_length"))["execution_id"]
    with service.admin() as admin:
        tools = admin.get("/admin/mcp_tools/tool/", params={"q": "token_length"}).text
        tool_id = admin.get(
            "/api/tools/token_length/", headers={"Authorization": f"Token {service.tokens['root']}"}
        ).json()["id"]
        tool_page = admin.get(f"/admin/mcp_tools/tool/{tool_id}/change/").text
        executions = admin.get("/admin/mcp_tools/toolexecution/", params={"q": execution_id}).text
        execution_page = admin.get(f"/admin/mcp_tools/toolexecution/{execution_id}/change/").text
    assert "token_length" in tools and "Gantz script" in tools
    assert "${TEST_TOOL_TOKEN}" in tool_page and TOKEN not in tool_page
    assert execution_id[:8] in executions
    assert "exit_code" in execution_page and f"{len(TOKEN)}\\n" in execution_page and TOKEN not in execution_page


def test_cancel_ends_the_whole_process_tree(service):
    with service.ws("alice") as ws:
        ws.send({"type": "execute", "tool": "sleeper", "parameters": {}})
        execution_id = ws.recv()["execution_id"]
        first = ws.until(lambda m: m["type"] == "execution.delta")
        pids = pids_from(first[-1]["text"])  # the shell and the sleep it left running
        assert len(pids) == 2 and all(psutil.pid_exists(pid) for pid in pids)
        ws.send({"type": "cancel", "execution_id": execution_id})
        end = ws.until_terminal()
    assert end[-1]["type"] == "execution.cancelled"
    wait_until_gone(pids)


def test_timeout_fails_with_timeout_and_ends_the_whole_process_tree(service):
    with service.ws("alice") as ws:
        ws.send({"type": "execute", "tool": "sleeper_short", "parameters": {}})
        first = ws.until(lambda m: m["type"] == "execution.delta")
        pids = pids_from(first[-1]["text"])
        end = ws.until_terminal()
    assert end[-1]["type"] == "execution.failed" and end[-1]["error"]["code"] == "timeout"
    assert "2s limit" in end[-1]["error"]["message"]
    wait_until_gone(pids)


def test_results_are_cached_only_for_tools_that_say_they_are_pure(service, tmp_path):
    def twice(tool: str) -> list[dict]:
        parameters = {"file": str(tmp_path / f"{tool}.txt")}
        return [completed(service.execute_ws("alice", tool, parameters, use_cache=True)) for _ in range(2)]

    impure, pure = twice("impure_counter"), twice("pure_counter")
    assert [(e["result"]["output"], e["cached"]) for e in impure] == [("1\n", False), ("2\n", False)]
    assert [(e["result"]["output"], e["cached"]) for e in pure] == [("1\n", False), ("1\n", True)]
    assert (tmp_path / "pure_counter.txt").read_text() == "x\n"  # the second answer did not run it


def test_a_user_past_the_concurrent_limit_is_refused_until_a_run_ends(service, tmp_path):
    """The embedded server allows 3 running executions per user. The production stack's limit is lifted
    for its load tests, so there a daphne of its own with a limit of 1 serves beside it (same Redis,
    PostgreSQL and workers)."""
    with limited_server(service) as (ws_url, limit):
        gates = [tmp_path / f"gate{i}" for i in range(limit)]
        with ws_connect(ws_url, service.tokens["viewer"]) as ws:
            for gate in gates:
                os.mkfifo(gate)
                send(ws, {"type": "execute", "tool": "gated", "parameters": {"gate": str(gate)}})
                next_message(ws, "execution.accepted")
            send(ws, {"type": "execute", "tool": "greet", "parameters": {"name": "one too many"}, "request_id": "x"})
            refused = next_message(ws, "error")
            for gate in gates:
                write_line(gate, "done")
            for _ in gates:
                next_message(ws, "execution.completed")
            send(ws, {"type": "execute", "tool": "greet", "parameters": {"name": "now"}, "request_id": "y"})
            accepted = next_message(ws, "execution.accepted")
    assert refused["code"] == "rate_limited" and refused["request_id"] == "x" and refused["retry_after"] >= 1
    assert accepted["request_id"] == "y"


def next_message(ws, kind: str) -> dict:
    """The next message of type ``kind`` (other executions' events pass by meanwhile)."""
    while (message := recv(ws, 60))["type"] != kind:
        pass
    return message


@contextmanager
def limited_server(service) -> Iterator[tuple[str, int]]:
    """(WebSocket URL, per-user limit) of a server with a concurrent limit a test can reach."""
    if service.topology != "production":
        yield service.ws_url, EMBEDDED_MAX_CONCURRENT
        return
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
        cwd=ROOT,
        env={**service.env, "MCP_MAX_CONCURRENT_EXECUTIONS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until(
            lambda: http_ok(f"http://127.0.0.1:{port}/health/") or process.poll() is not None,
            timeout=60,
            what="the limited daphne",
        )
        assert process.poll() is None
        yield f"ws://127.0.0.1:{port}", 1
    finally:
        process.terminate()
        process.wait(20)
