"""Nothing a script started outlives its run: after a cancel, a timeout, an emit
that raised, and after the worker itself is killed with SIGKILL. Checked by pid.

The tree: the tool's shell, a plain grandchild, one that ignores SIGTERM (only
SIGKILL ends it), a nested shell with a child of its own, and the supervisor's
watcher. The script says "started <its pid>" once it has forked its children,
and the nested shell says "nested" once it has forked its own, so the test
knows every member exists before it looks."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mcp_tools.errors import PermanentToolError
from mcp_tools.gantz import run_script

from .conftest import Recorder
from .pids import group_members, wait_until_gone

REPO = Path(__file__).resolve().parents[2]
TREE_SCRIPT = """
    sleep 300 &
    (trap '' TERM; exec sleep 300) &
    sh -c 'sleep 300 & echo "nested $!"; wait' &
    echo "started $$"
    wait
"""
TREE_SIZE = 6  # shell, sleep, TERM-ignoring sleep, nested shell, its sleep, watcher


def tree_tool(gantz_tool, script: str = TREE_SCRIPT):
    return gantz_tool(f"""
        tools:
          - name: tree
            script:
              shell: |
{textwrap.indent(textwrap.dedent(script).strip(), " " * 16)}
        """)


def ready_pgid(text: str, markers: tuple[str, ...] = ("nested",)) -> int | None:
    """The tool's pid (its group's id) once it and ``markers`` were printed."""
    lines = text.splitlines()
    if not all(any(line.startswith(marker) for line in lines) for marker in markers):
        return None
    return next((int(line.split()[1]) for line in lines if line.startswith("started ")), None)


async def start_tree(tool, markers: tuple[str, ...] = ("nested",)) -> tuple[asyncio.Task, list[int]]:
    """Run ``tool`` as a task until it is ready; the live pids of its group."""
    emit = Recorder()
    ready = asyncio.Event()
    emit.on_piece = lambda _text: ready.set() if ready_pgid(emit.text, markers) else None
    task = asyncio.create_task(run_script(tool, {}, emit=emit, environ=os.environ))
    async with asyncio.timeout(30):
        await ready.wait()
    return task, group_members(ready_pgid(emit.text, markers))


@pytest.fixture
def short_grace(settings):
    settings.MCP_CONFIG = {**settings.MCP_CONFIG, "SCRIPT_KILL_GRACE_S": 0.5}


async def test_cancel_ends_the_whole_tree(gantz_tool, short_grace):
    task, members = await start_tree(tree_tool(gantz_tool))
    assert len(members) == TREE_SIZE, members

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    wait_until_gone(members)


async def test_a_timeout_from_the_engine_ends_the_whole_tree(gantz_tool, short_grace):
    task, members = await start_tree(tree_tool(gantz_tool))

    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0):  # as the engine enforces tool.timeout_s()
            await task

    assert len(members) == TREE_SIZE, members
    wait_until_gone(members)


async def test_an_exception_from_emit_ends_the_whole_tree_and_propagates(gantz_tool, short_grace):
    emit = Recorder()
    members: list[int] = []

    def over_the_cap(_text: str) -> None:
        pgid = ready_pgid(emit.text)
        if pgid:
            members.extend(group_members(pgid))
            raise PermanentToolError("Output is over the cap.", code="output_too_large")

    emit.on_piece = over_the_cap
    with pytest.raises(PermanentToolError) as caught:
        async with asyncio.timeout(30):
            await run_script(tree_tool(gantz_tool), {}, emit=emit, environ=os.environ)

    assert caught.value.code == "output_too_large"
    assert len(members) == TREE_SIZE, members
    wait_until_gone(members)


async def test_stop_sends_sigterm_first_and_ends_early_once_everything_exited(gantz_tool, tmp_path, settings):
    settings.MCP_CONFIG = {**settings.MCP_CONFIG, "SCRIPT_KILL_GRACE_S": 600}
    marker = tmp_path / "terminated"
    # The child says it is ready once it runs in a shell of its own: a SIGTERM that
    # reached it between fork and exec would be lost in the parent's trap handler.
    tool = tree_tool(
        gantz_tool,
        f"""
        trap 'echo term > {marker}; exit 143' TERM
        sh -c 'echo "child ready"; exec sleep 300' &
        echo "started $$"
        wait
    """,
    )
    task, members = await start_tree(tool, markers=("started", "child ready"))

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(30):  # far less than the 600 s grace period
            await task

    assert marker.read_text() == "term\n"
    assert len(members) == 3, members  # shell, sleep, watcher
    wait_until_gone(members)


DRIVER = """
import asyncio, os, sys
from pathlib import Path
sys.path.insert(0, {repo!r})
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"  # the executors read their limits from the settings
from mcp_tools.gantz import load_gantz_file, run_script

def emit(text):
    sys.stdout.write(text)
    sys.stdout.flush()

tool = load_gantz_file(Path(sys.argv[1])).tools[0]
asyncio.run(run_script(tool, {{}}, emit=emit, environ=os.environ))
"""


def test_killing_the_worker_with_sigkill_ends_the_whole_tree(gantz_tool, tmp_path):
    tree_tool(gantz_tool)  # writes tmp_path / "gantz.yaml"
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER.format(repo=str(REPO)))
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    worker = subprocess.Popen(
        [sys.executable, str(driver), str(tmp_path / "gantz.yaml")],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    try:
        printed = ""
        while ready_pgid(printed) is None:
            line = worker.stdout.readline()
            assert line, "the worker ended before the tool started"
            printed += line
        members = group_members(ready_pgid(printed))
        assert len(members) == TREE_SIZE, members

        worker.send_signal(signal.SIGKILL)
        assert worker.wait(timeout=30) == -signal.SIGKILL

        wait_until_gone(members)
    finally:
        worker.kill()
        worker.wait()
        worker.stdout.close()
