"""Shared fixtures.

Two kinds of tests live here:

* the default run (embedded settings: SQLite, in-memory channel layer, a
  Celery worker thread in this process) — unit, consumer and embedded
  end-to-end tests;
* ``-m production`` with ``REDIS_URL``/``DATABASE_URL`` set (``./dev test``
  does both): real daphne and ``celery worker`` processes, Redis, PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from mcp_tools.tools.registry import sync_tools
from tests.fake_anthropic import fake_anthropic  # noqa: F401  (fixture)
from tests.stack import _stack_session, clear_app_keys, stack  # noqa: F401  (fixtures)

TERMINAL = {"execution.completed", "execution.failed", "execution.cancelled"}
ORIGIN = (b"origin", b"http://localhost")
# A browser's handshake names the host it was sent to; the Origin check compares the two.
HOST = (b"host", b"localhost")


def pytest_sessionfinish(session, exitstatus):
    """Django drops the SQLite test database file, not its WAL and shared-memory files."""
    from pathlib import Path

    from django.conf import settings

    name = settings.DATABASES["default"].get("TEST", {}).get("NAME")
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3") and name:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{name}{suffix}").unlink(missing_ok=True)


@pytest.fixture(autouse=True)
def _isolated(settings):
    """Offline provider without pacing, and no cached results or counters from earlier tests."""
    from django.core.cache import cache

    settings.OFFLINE_DELAY_S = 0.0
    settings.LLM_PROVIDER = "offline"
    if settings.PRODUCTION:
        clear_app_keys()  # FLUSHDB would also drop Celery's queue bindings
    else:
        cache.clear()


@pytest.fixture(autouse=True)
def _engine_stopped_after():
    """Each test gets a fresh engine if it uses one: no run, reaper or database thread outlives its test."""
    yield
    from mcp_tools.engine.loop import stop_engine

    stop_engine(grace_s=5)


@pytest.fixture
def tools(db):
    sync_tools()


@pytest.fixture
def worker(transactional_db):
    """The embedded Celery worker (the engine's pool in a thread of this process), for tests that queue."""
    from mcp_tools import embedded

    embedded.start_worker()


def run_now(user, tool_name: str, parameters: dict | None = None):
    """Record an execution and run it to its end in this process's engine (as ``manage.py run_tool`` does)."""
    from mcp_tools import services
    from mcp_tools.engine.runner import run_here

    execution = services.execution_prepare(user=user, tool_name=tool_name, parameters=parameters or {})
    run_here(str(execution.pk))
    execution.refresh_from_db()
    return execution


def make_user(username: str, *, staff: bool = False):
    user = get_user_model().objects.create_user(username=username, password="pw-" + username, is_staff=staff)
    Token.objects.create(user=user)
    return user


@pytest.fixture
def alice(db):
    return make_user("alice")


@pytest.fixture
def bob(db):
    return make_user("bob")


@pytest.fixture
def staff(db):
    """Staff and nothing more: gets into the admin, sees and cancels only their own executions."""
    return make_user("staffer", staff=True)


def grant(user, *codenames: str):
    from django.contrib.auth.models import Permission

    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="mcp_tools", codename__in=codenames))
    # A fresh object (permissions are cached per instance), with the token async tests read.
    return get_user_model().objects.select_related("auth_token").get(pk=user.pk)


@pytest.fixture
def operator(db):
    """Staff with the monitoring permissions: watches and cancels everyone's executions."""
    return grant(make_user("operator", staff=True), "view_all_executions", "cancel_any_execution")


@pytest.fixture
async def connect() -> AsyncIterator[Callable]:
    """``await connect(user, path=...)``: a connected communicator, closed at teardown."""
    from config.asgi import application

    opened: list[WebsocketCommunicator] = []

    async def _connect(
        user=None,
        *,
        path: str = "/ws/executions/",
        headers: list | None = None,
        query: str = "",
        expect_close: int | None = None,
    ):
        all_headers = [ORIGIN, HOST] + list(headers or [])
        if user is not None:
            all_headers.append((b"authorization", f"Token {user.auth_token.key}".encode()))
        comm = WebsocketCommunicator(application, path + (f"?{query}" if query else ""), headers=all_headers)
        connected, _ = await comm.connect(timeout=10)
        opened.append(comm)
        assert connected
        return comm

    yield _connect
    for comm in opened:
        await comm.disconnect()


async def send(comm: WebsocketCommunicator, message: dict) -> None:
    await comm.send_to(text_data=json.dumps(message))


async def receive(comm: WebsocketCommunicator, timeout: float = 10) -> dict:
    return json.loads(await comm.receive_from(timeout=timeout))


async def receive_until_terminal(comm: WebsocketCommunicator, timeout: float = 20) -> list[dict]:
    messages = []
    while True:
        message = await receive(comm, timeout)
        messages.append(message)
        if message["type"] in TERMINAL:
            return messages


def assert_contiguous(events: list[dict], start: int = 1) -> None:
    seqs = [e["seq"] for e in events if e["type"].startswith("execution.") and e["type"] != "execution.accepted"]
    assert seqs == list(range(start, start + len(seqs))), seqs


def streamed_text(events: list[dict]) -> str:
    """Deltas after the last ``retrying``, joined (PROTOCOL.md)."""
    text: list[str] = []
    for event in events:
        if event["type"] == "execution.status" and event["status"] == "retrying":
            text = []
        elif event["type"] == "execution.delta":
            text.append(event["text"])
    return "".join(text)
