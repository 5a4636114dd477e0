"""Running a Gantz ``script`` tool: stream its stdout, then its stderr, then a result.

::

    result = await run_script(tool, {"path": "."}, emit=send_delta, environ=os.environ)
    # {"output": <everything emitted, joined>, "exit_code": 0}

- **argv**: ``command`` (``${VAR}`` expanded, looked up on the child's PATH, or
  relative to the working directory if it has a ``/``) with ``args``, each
  rendered as one argv element (``templates.py``); or ``/bin/sh -c <shell>``
  with placeholders turned into variable references (``shell.py``).
- **environment**: minimal (``environment.py``); cwd: ``working_dir``, by
  default the Gantz file's folder.
- **output**: stdout is passed to ``emit`` chunk by chunk as the process writes
  it, decoded as UTF-8 without splitting a character (bad bytes become
  U+FFFD). stderr is collected (up to ``SCRIPT_STDERR_MAX_BYTES``) and, if
  there is any, emitted at the end after a newline, as gantz-cli joins them.
  Unlike gantz-cli, nothing is trimmed: what was streamed stays streamed, and
  ``output`` is exactly the emitted text.
- **failure**: a non-zero exit (or a signal) raises ``PermanentToolError``
  ``tool_failed`` after everything was emitted, with ``result`` holding the
  output and ``exit_code`` (negative: the signal number). A command that is
  missing or not executable fails the same way with a readable message.
- **stopping**: an exception from ``emit`` (output cap, execution ended) or
  a cancellation (user cancel, the engine's timeout) ends the whole process
  tree before it propagates (``process.py``). The timeout itself is the
  engine's: ``tool.timeout_s()``.
"""

from __future__ import annotations

import asyncio
import codecs
import logging
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mcp_tools.errors import PermanentToolError

from . import conf
from .environment import child_environment, expand_env
from .model import GantzTool
from .process import READ_CHUNK_BYTES, ProcessTree, describe_exit, drain
from .shell import render_shell
from .templates import render_arg

logger = logging.getLogger(__name__)

Emit = Callable[[str], None]


async def run_script(
    tool: GantzTool, parameters: dict[str, Any], *, emit: Emit, environ: Mapping[str, str]
) -> dict[str, Any]:
    """Run ``tool``'s script with ``parameters``; see the module docstring."""
    spec = tool.script
    if spec is None:
        raise ValueError(f"{tool.name} is not a script tool")
    arguments = tool.arguments(parameters)
    env = child_environment(tool.environment, arguments, environ)
    if not spec.working_dir.is_dir():
        raise _failed(tool, f"its working directory {spec.working_dir} does not exist")
    if spec.shell:
        argv = ["/bin/sh", "-c", render_shell(spec.shell, arguments, environ), tool.name]
    else:
        command = _resolve_command(tool, expand_env(spec.command, environ), env, spec.working_dir)
        argv = [command, *(render_arg(arg, arguments, environ) for arg in spec.args)]
    try:
        tree = await ProcessTree.start(argv, cwd=spec.working_dir, env=env)
    except OSError as exc:
        raise _failed(tool, f"its process could not be started ({exc.strerror})") from exc
    output, returncode = await _supervise(tree, emit)
    result = {"output": output, "exit_code": returncode}
    if returncode != 0:
        raise PermanentToolError(f"Tool {tool.name!r} {describe_exit(returncode)}.", code="tool_failed", result=result)
    return result


async def _supervise(tree: ProcessTree, emit: Emit) -> tuple[str, int]:
    """Stream the tree's output to ``emit``; stop the tree if anything goes wrong."""
    stderr_task = asyncio.create_task(_collect(tree.stderr, conf.stderr_max_bytes()))
    leftovers_task = asyncio.create_task(tree.kill_leftovers_after_exit())
    emitted: list[str] = []

    def send(text: str) -> None:
        if text:
            emit(text)
            emitted.append(text)

    try:
        await _stream(tree.stdout, send)
        returncode = await tree.wait()
        stderr = await stderr_task
        if stderr:
            send(("\n" if emitted else "") + stderr)
    except BaseException:
        stdout_task = asyncio.create_task(drain(tree.stdout))
        try:
            await tree.stop(conf.kill_grace_s(), stdout_task, stderr_task)
        finally:
            stdout_task.cancel()
        raise
    finally:
        leftovers_task.cancel()
        stderr_task.cancel()
        tree.release()
    return "".join(emitted), returncode


async def _stream(stream: asyncio.StreamReader | None, send: Emit) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    while stream is not None and (chunk := await stream.read(READ_CHUNK_BYTES)):
        send(decoder.decode(chunk))
    send(decoder.decode(b"", final=True))


async def _collect(stream: asyncio.StreamReader | None, max_bytes: int) -> str:
    """All of ``stream`` as text, keeping at most ``max_bytes`` of it."""
    kept = bytearray()
    dropped = 0
    while stream is not None and (chunk := await stream.read(READ_CHUNK_BYTES)):
        room = max(0, max_bytes - len(kept))
        kept += chunk[:room]
        dropped += len(chunk) - min(room, len(chunk))
    text = kept.decode("utf-8", errors="replace")
    if dropped:
        text += f"\n[{dropped} more bytes of stderr not kept]"
    return text


def _resolve_command(tool: GantzTool, command: str, env: Mapping[str, str], cwd: Path) -> str:
    """The executable to run: ``command`` on the child's PATH, or a path from ``cwd``."""
    written = tool.script.command if tool.script else command
    if "/" in command:
        candidates = [cwd / command]
    else:
        found = shutil.which(command, path=env.get("PATH", os.defpath))
        if found:
            return found
        candidates = [Path(folder or ".") / command for folder in env.get("PATH", os.defpath).split(os.pathsep)]
    for candidate in candidates:
        if candidate.is_file():
            if os.access(candidate, os.X_OK):
                return str(candidate)
            raise _failed(tool, f"its command {written!r} is not executable")
    where = "" if "/" in command else " on the PATH"
    raise _failed(tool, f"its command {written!r} was not found{where}")


def _failed(tool: GantzTool, reason: str) -> PermanentToolError:
    return PermanentToolError(
        f"Tool {tool.name!r} cannot run: {reason}.", code="tool_failed", result={"output": "", "exit_code": -1}
    )
