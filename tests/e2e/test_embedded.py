"""The embedded default as a user runs it: `manage.py serve` with no settings,
one daphne process, a real WebSocket client."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import assert_contiguous, streamed_text
from tests.e2e.helpers import page_server, recv, recv_until_terminal, send, ws_connect
from tests.stack import ROOT, free_port, http_ok, wait_until


@pytest.fixture
def embedded_server(tmp_path: Path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("REDIS_URL", "DATABASE_URL", "SECRET_KEY", "ANTHROPIC_API_KEY", "PYTEST_VERSION")}
    env.update(DATA_DIR=str(tmp_path), MCP_ALLOW_PRIVATE_URLS="true", OFFLINE_DELAY_S="0.001", PYTHONUNBUFFERED="1")
    port = free_port()
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "manage.py", "serve", "--port", str(port)], cwd=ROOT, env=env,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        match = wait_until(lambda: re.search(r"token: (\w+)", log_path.read_text()) or process.poll() is not None,
                           timeout=60, what="manage.py serve")
        assert process.poll() is None, log_path.read_text()
        wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/admin/login/") or process.poll() is not None,
                   timeout=60, what="daphne listening")
        yield f"ws://127.0.0.1:{port}", match[1], log_path
    finally:
        process.terminate()
        process.wait(20)


def test_serve_prints_a_token_and_streams_a_summary(embedded_server):
    ws_url, token, log_path = embedded_server
    assert "ws://127.0.0.1:" in log_path.read_text()
    with page_server() as url, ws_connect(ws_url, token) as ws:
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
