"""MCP test helpers: the official SDK's clients, and a project in a temp directory.

* ``http_session(url, token)``: ``streamable_http_client`` + ``ClientSession``,
  initialized, the token sent as ``Authorization: Bearer``.
* ``stdio_session(env, user)``: ``manage.py mcp_stdio`` spawned by the SDK's
  ``stdio_client``.
* ``Progress``: a progress callback that records what it got.
* ``embedded_env(data_dir)`` / ``manage(env, ...)``: the embedded default in a
  temp ``DATA_DIR`` (its own SQLite file), for subprocesses such as Gantz's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx2
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

ROOT = Path(__file__).resolve().parent.parent.parent
# Variables that would point a subprocess at another deployment or the real API.
FOREIGN_ENV = (
    "REDIS_URL",
    "DATABASE_URL",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "SECRET_KEY",
    "CELERY_BROKER_URL",
    "LLM_PROVIDER",
    "GANTZ_CONFIG",
)


@asynccontextmanager
async def http_session(url: str, token: str | None) -> AsyncIterator[ClientSession]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=120)) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session


@asynccontextmanager
async def stdio_session(env: dict[str, str], *args: str) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(command=sys.executable, args=["manage.py", "mcp_stdio", *args], env=env, cwd=ROOT)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


class Progress:
    """Records ``notifications/progress`` for one call: ``(progress, message)`` pairs."""

    def __init__(self) -> None:
        self.updates: list[tuple[float, str | None]] = []
        self.first = anyio.Event()

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.updates.append((progress, message))
        self.first.set()


def claude_held(settings, fake_anthropic) -> None:
    """Runs call the fake Claude, whose streams hold after two pieces ("w0 w1 ") until closed: only a
    cancel can end them. A cancel test must not bet on a run outlasting the cancel's trip (a 1.4 s
    offline report once ended completed first, on a loaded machine)."""
    settings.LLM_PROVIDER, settings.ANTHROPIC_API_KEY = "anthropic", "test-key"
    settings.ANTHROPIC_BASE_URL = fake_anthropic.url
    fake_anthropic.set_default({"tokens": 20, "hold_after": 2, "ping_s": 0.05})


async def call_and_cancel(session: ClientSession, tool: str, arguments: dict, progress: Progress) -> None:
    """Start a call, wait for its first progress notification, then cancel it as a client does."""

    async def call() -> None:
        await session.call_tool(tool, arguments, progress_callback=progress)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(call)
        with anyio.fail_after(30):
            await progress.first.wait()
        tasks.cancel_scope.cancel()


def structured(result, declared=None) -> dict:
    """A result's structured content, checked against what the tool declared.

    A success's structuredContent validates against the tool's outputSchema
    (``declared``, the tool as tools/list gave it; else its row's
    ``output_schema``) and its first text block is the streamed text (the
    row's ``output_field``; with ``declared``, one of the result's strings);
    an error carries ``error.code`` in both.
    """
    from jsonschema import Draft202012Validator

    from mcp_tools.models import ToolExecution

    assert result.content[0].type == "text"
    content = result.structured_content
    if result.is_error:
        assert result.content[0].text.startswith(content["error"]["code"] + ":")
        return content
    if declared is not None:
        Draft202012Validator(declared.output_schema).validate(content)
        assert result.content[0].text in [value for value in content.values() if isinstance(value, str)]
        return content
    execution = ToolExecution.objects.select_related("tool").get(pk=result.meta["execution_id"])
    Draft202012Validator(execution.tool.output_schema).validate(content)
    assert result.content[0].text == content[execution.tool.output_field]
    return content


def embedded_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The embedded default (SQLite in ``data_dir``, offline provider), ``python`` = this venv's."""
    env = {key: value for key, value in os.environ.items() if key not in FOREIGN_ENV}
    env.update(
        {
            "DATA_DIR": str(data_dir),
            "LLM_PROVIDER": "offline",
            "OFFLINE_DELAY_S": "0",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "PYTHONUNBUFFERED": "1",
            "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
        }
    )
    env.update(extra)
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    process = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert process.returncode == 0, process.stdout + process.stderr
    return process


def prepare_embedded_project(env: dict[str, str], *usernames: str) -> None:
    """Migrate the temp database, load gantz.yaml, create the users."""
    manage(env, "migrate", "--verbosity", "0")
    manage(env, "sync_tools")
    for username in usernames:
        manage(
            {**env, "DJANGO_SUPERUSER_PASSWORD": "pw-" + username},
            "createsuperuser",
            "--noinput",
            "--username",
            username,
            "--email",
            f"{username}@example.com",
        )


def python_on_path(env: dict[str, str], command: str) -> str:
    found = shutil.which(command, path=env["PATH"])
    assert found, f"{command} not on PATH"
    return found
