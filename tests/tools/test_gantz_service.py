"""A Gantz file just works: its script and http tools through the whole service, in both topologies.

Every test here runs twice: on the embedded default (``manage.py serve``) and
on the production topology (daphne, ``celery worker`` processes, Redis,
PostgreSQL); see ``conftest.py``. The tools are ``gantz_fixture.yaml``'s.
"""
from __future__ import annotations

import json

import psutil

from tests.tools.service import pids_from, stream_text, write_line


def completed(messages: list[dict]) -> dict:
    assert messages[-1]["type"] == "execution.completed", messages[-1]
    return messages[-1]


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
