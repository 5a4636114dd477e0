"""A worker that dies takes its scripts with it, and the execution goes on by the worker-loss rules.

Production topology only: a ``celery worker`` process is SIGKILLed while it
runs a script tool. Nothing runs in the dead worker any more, yet every
process of the script's tree is gone (the lifeline, ``mcp_tools/gantz/process.py``).
Then, as ``mcp_tools/engine/liveness.py`` says, another worker's reaper runs a
repeatable tool again (``retrying``, reason ``worker_lost``) and fails one
marked ``repeatable: false`` with ``worker_lost``. Each test starts a second
worker first, so one is left for the rest of the session.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from mcp_tools.models import ToolExecution
from tests.gantz.pids import wait_until_gone
from tests.tools.service import pids_from, stream_text

pytestmark = [pytest.mark.production, pytest.mark.django_db(transaction=True)]

# The reaper notices a dead worker within MCP_HEARTBEAT_STALE_S + MCP_REAPER_INTERVAL_S (10 + 3 s by default).
AFTER_THE_REAPER_S = 60


def kill_the_worker_running(stack, execution_id: str) -> None:
    """SIGKILL the worker process that runs the execution, and forget it."""
    pid = int(ToolExecution.objects.get(pk=execution_id).worker.split(":")[1])  # host:pid:engine
    [worker] = [worker for worker in stack.workers if worker.popen.pid == pid]
    os.kill(pid, signal.SIGKILL)
    worker.popen.wait(10)
    stack.workers.remove(worker)


@contextmanager
def worker_killed_mid_run(service, stack, tool: str, flag: Path) -> Iterator[tuple[Any, list[dict], list[int]]]:
    """Run ``tool`` until its first output, then kill its worker: the connection following it, the
    messages so far and the script's pids (the shell and the sleep it waits on)."""
    stack.start_worker()
    with service.ws("alice") as ws:
        ws.send({"type": "execute", "tool": tool, "parameters": {"flag": str(flag)}})
        messages = ws.until(lambda m: m["type"] == "execution.delta")
        pids = pids_from(messages[-1]["text"])
        kill_the_worker_running(stack, messages[0]["execution_id"])
        yield ws, messages, pids


def test_a_killed_workers_script_dies_with_it_and_a_repeatable_tool_runs_again(production_service, stack, tmp_path):
    flag = tmp_path / "flag"
    with worker_killed_mid_run(production_service, stack, "until_flag", flag) as (ws, messages, pids):
        wait_until_gone(pids)
        flag.touch()  # the next attempt finds it and ends
        messages += ws.until_terminal(timeout=AFTER_THE_REAPER_S)
    retrying = [m for m in messages if m["type"] == "execution.status" and m["status"] == "retrying"]
    assert [(m["reason"], m["attempt"]) for m in retrying] == [("worker_lost", 2)]
    end = messages[-1]
    assert end["type"] == "execution.completed" and end["attempt"] == 2
    new_pids = pids_from(end["result"]["output"])
    assert end["result"] == {"output": f"pids {new_pids[0]} {new_pids[1]}\ndone\n", "exit_code": 0}
    assert set(new_pids).isdisjoint(pids)
    assert stream_text(messages) == end["result"]["output"]  # the first attempt's text was dropped
    assert [e["seq"] for e in messages[1:]] == list(range(1, len(messages)))  # accepted has seq 0


def test_a_killed_workers_script_dies_with_it_and_a_tool_not_repeatable_fails_worker_lost(
    production_service, stack, tmp_path
):
    with worker_killed_mid_run(production_service, stack, "until_flag_once", tmp_path / "flag") as (ws, messages, pids):
        wait_until_gone(pids)
        messages += ws.until_terminal(timeout=AFTER_THE_REAPER_S)
    end = messages[-1]
    assert end["type"] == "execution.failed" and end["error"]["code"] == "worker_lost"
    assert "its tool is not safe to repeat" in end["error"]["message"]
    assert not [m for m in messages if m.get("status") == "retrying"]
    row = ToolExecution.objects.get(pk=end["execution_id"])
    assert (row.status, row.error_code, row.worker) == ("failed", "worker_lost", "")
