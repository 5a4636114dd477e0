"""The embedded default as a user runs it: `manage.py serve` with no settings,
one daphne process, a real WebSocket client."""

from __future__ import annotations

import queue
import re
import shlex
import subprocess
import threading
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import assert_contiguous, streamed_text
from tests.e2e.helpers import embedded_serve, page_server, recv, recv_until_terminal, send, ws_connect
from tests.stack import ROOT

# A line a quiet log must not have: only the start-up lines and the access log are expected.
LOG_PROBLEM = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b|Traceback|Warning:")


@pytest.fixture
def embedded_server(tmp_path: Path):
    with embedded_serve(tmp_path, MCP_ALLOW_PRIVATE_URLS="true", OFFLINE_DELAY_S="0.001") as server:
        yield server


def test_serve_prints_a_token_and_streams_a_summary(embedded_server):
    assert "ws://127.0.0.1:" in embedded_server.output()
    with page_server() as url, ws_connect(embedded_server.ws_url, embedded_server.token) as ws:
        send(ws, {"type": "execute", "tool": "summarize_content", "parameters": {"url": url}})
        accepted = recv(ws)
        events = recv_until_terminal(ws)
        send(ws, {"type": "subscribe", "execution_id": accepted["execution_id"], "after_seq": 1})
        assert recv(ws)["type"] == "subscribed"
        replay = recv_until_terminal(ws)
    assert_contiguous(events)
    completed = events[-1]
    assert completed["type"] == "execution.completed"
    assert completed["result"]["model"] == "offline"
    assert "Tides are the regular rise and fall" in completed["result"]["summary"]
    assert streamed_text(events) == completed["result"]["summary"]
    assert replay == events[1:]


def test_the_try_command_serve_prints_works(embedded_server):
    line = next(line for line in embedded_server.output().splitlines() if line.startswith("Try:"))
    client = subprocess.Popen(
        shlex.split(line.removeprefix("Try:")),
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(out) for out in client.stdout], daemon=True).start()
    try:
        client.stdin.write('{"type": "ping", "request_id": "p1"}\n')
        client.stdin.flush()  # and keep stdin open: at its end the client hangs up
        seen = []
        while not any('"pong"' in out for out in seen):
            seen.append(lines.get(timeout=20))
    finally:
        client.kill()
        client.wait(10)
    assert any('"request_id": "p1"' in out or '"request_id":"p1"' in out for out in seen), seen


def test_a_session_leaves_no_warning_in_the_server_log(tmp_path):
    with embedded_serve(tmp_path, OFFLINE_DELAY_S="0.001") as server:
        with ws_connect(server.ws_url, server.token) as ws:  # through the embedded Celery worker
            send(ws, {"type": "execute", "tool": "generate_report", "parameters": {"data": {"sales": [3, 5, 8]}}})
            recv(ws)
            assert recv_until_terminal(ws)[-1]["type"] == "execution.completed"
        for path in ("/favicon.ico", "/accounts/login/", "/static/mcp_tools/favicon.svg"):
            with urllib.request.urlopen(server.http_url + path, timeout=10) as response:
                assert response.status == 200, path
    problems = [line for line in server.output().splitlines() if LOG_PROBLEM.search(line)]
    assert problems == []
