"""A tool's process tree, and the rule that nothing in it outlives the run.

Every tool runs in a session (and process group) of its own, started through
a tiny supervising shell::

    worker ──lifeline pipe──▶ sh: fd 3 = lifeline
                               ├─ ( ignore TERM/INT/HUP; read fd 3 until EOF; kill -9 0 ) &   the watcher
                               └─ exec the tool (stdin /dev/null, no fd 3)                     pid = pgid

Three ways a run ends, and what ends its tree:

- **The tool exits.** Whatever it left running in its group (a forgotten
  ``&``) is killed with SIGKILL at once; the tool's result does not wait for it.
- **Stop** (cancel, timeout, an ``emit`` that raised): SIGTERM to the group;
  the grace period (``SCRIPT_KILL_GRACE_S``) ends early once the tool has
  exited and every process holding its output pipes has closed them; then
  SIGKILL to whatever is left.
- **The worker dies** (even ``kill -9``): the kernel closes the worker's end of
  the lifeline, the watcher reads EOF and SIGKILLs the whole group. Nothing
  has to run in the dead worker, and no signal or ``prctl`` is involved:
  ``PR_SET_PDEATHSIG`` would need ``preexec_fn`` (unsafe in a threaded worker)
  and fires when the *thread* that forked exits, not the process. The worker
  is the lifeline's only writer: asyncio's pipes are close-on-exec, so other
  children never inherit it.

The watcher ignores SIGTERM so that a stop cannot remove it before the
SIGKILL, and while it lives the group id cannot be reused by an unrelated
process, so signalling the group is always safe. Limits: a process that
leaves the group (``setsid``, a double-forking daemon) escapes all three,
and if it keeps stdout open the run lasts until the engine's timeout; a tool
that SIGKILLs its own group takes the watcher with it; a plain ``fork()`` of
the worker while a tool runs (not ``exec``) inherits the lifeline and keeps
the tree alive as long as it lives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

SHELL = "/bin/sh"
SUPERVISOR = (
    "exec 3<&0; "
    "( trap '' TERM INT HUP; while read -r _ <&3; do :; done; kill -9 0 ) "
    "</dev/null >/dev/null 2>&1 & "
    'exec "$@" </dev/null 3<&-'
)
READ_CHUNK_BYTES = 64 * 1024


class _ExitAwareProtocol(asyncio.subprocess.SubprocessStreamProtocol):
    """asyncio's stream protocol plus ``exited``, set the moment the process exits.

    ``Process.wait()`` is no substitute: on Python 3.12 it also waits for the
    output pipes to close, which a leftover grandchild can hold open forever."""

    def __init__(self, limit: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=limit, loop=loop)
        self.exited: asyncio.Future[None] = loop.create_future()

    def process_exited(self) -> None:
        super().process_exited()
        if not self.exited.done():
            self.exited.set_result(None)


class ProcessTree:
    """A started tool: ``stdout``/``stderr`` to read, ``stop()`` to end it all."""

    def __init__(self, transport: asyncio.SubprocessTransport, protocol: _ExitAwareProtocol) -> None:
        self.transport = transport
        self.protocol = protocol
        self.pgid = transport.get_pid()  # a new session: the tool's pid is its group's id
        self.stdout: asyncio.StreamReader | None = protocol.stdout
        self.stderr: asyncio.StreamReader | None = protocol.stderr
        self._group_killed = False

    @classmethod
    async def start(cls, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str]) -> ProcessTree:
        """Start ``argv`` under the supervisor; ``OSError`` if that cannot be done."""
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.subprocess_exec(
            lambda: _ExitAwareProtocol(READ_CHUNK_BYTES, loop),
            SHELL,
            "-c",
            SUPERVISOR,
            "gantz-supervisor",
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=cwd,
            env=dict(env),
            start_new_session=True,
        )
        logger.debug("Started %s as process group %s", argv[0], transport.get_pid())
        return cls(transport, protocol)

    async def wait(self) -> int:
        """The tool's return code, once it exited (negative: killed by that signal)."""
        await asyncio.shield(self.protocol.exited)
        returncode = self.transport.get_returncode()
        assert returncode is not None
        return returncode

    async def kill_leftovers_after_exit(self) -> None:
        """Once the tool has exited, kill what it left running in its group."""
        await self.wait()
        self.signal(signal.SIGKILL)

    async def stop(self, grace_s: float, *pending: asyncio.Future[Any]) -> None:
        """SIGTERM the group, give it ``grace_s`` (until the tool has exited and the
        ``pending`` readers saw the end of its output), then SIGKILL what is left."""
        self.signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(grace_s):
                await self.wait()
                await asyncio.gather(*pending, return_exceptions=True)
        except TimeoutError:
            logger.info("Process group %s outlived its %.1fs grace period; killing it", self.pgid, grace_s)
        finally:
            self.signal(signal.SIGKILL)
            self.cut_lifeline()
        await self.wait()  # SIGKILLed: prompt; reaped by asyncio's child watcher

    def signal(self, signum: int) -> None:
        """Signal the tool's whole group (never after it was SIGKILLed: its id may be reused)."""
        if self._group_killed:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pgid, signum)
        if signum == signal.SIGKILL:
            self._group_killed = True

    def cut_lifeline(self) -> None:
        """Close our end of the lifeline: the watcher then kills anything left."""
        lifeline = self.transport.get_pipe_transport(0)
        if lifeline is not None:
            lifeline.close()

    def release(self) -> None:
        """Kill what a finished tool left running, cut the lifeline and close the
        pipes; asyncio's child watcher reaps the tool."""
        if self.protocol.exited.done():
            self.signal(signal.SIGKILL)
        self.cut_lifeline()
        self.transport.close()


async def drain(stream: asyncio.StreamReader | None) -> None:
    """Read ``stream`` to its end, discarding it (so writers blocked on a full pipe can exit)."""
    while stream is not None and await stream.read(READ_CHUNK_BYTES):
        pass


def describe_exit(returncode: int) -> str:
    """``exited with code 3`` / ``was killed by signal SIGKILL (9)``."""
    if returncode >= 0:
        return f"exited with code {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = "unknown"
    return f"was killed by signal {name} ({-returncode})"
