"""The fault-injection stack: the production topology, ours to break.

``fault_stack`` (session) runs what production runs — daphne, two ``celery
worker`` processes (the production command: the engine's pool), ``celery
beat`` (the daily clean-up), Redis, PostgreSQL — plus the fake Messages API,
with settings small enough for a test to wait out: a 2 s Claude read timeout,
10 s broker visibility timeout, 8 s tool time limit (below it), heartbeats
every 1 s that go stale after 3 s, and reaper passes every 1 s. Redis and
PostgreSQL are private servers (``infra.py``), so restarting them harms no
other test run.

Each test gets it through ``stack_ready``: both workers alive (a killed one
is replaced), the fake API reset. The test process reads the database with
psycopg (``stack.row(execution_id)``), since its own Django settings point at
the shared test database, not this one.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.reliability.infra import PrivatePostgres, PrivateRedis
from tests.stack import (
    STARTUP_TIMEOUT_S,
    FakeAnthropicControl,
    Process,
    Stack,
    _start_fake_anthropic,
    free_port,
    http_ok,
    wait_until,
)

DATABASE = "mcp_faults"
TOOL_TIMEOUT_S = 8
WORKER_CONCURRENCY = 50
USERS = ("alice", "prober", "loader")

SETUP_SCRIPT = f"""
import json
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from mcp_tools.models import Tool
from mcp_tools.tools.registry import sync_tools
sync_tools()
Tool.objects.update(timeout={TOOL_TIMEOUT_S})
tokens = {{}}
for name in {USERS!r}:
    user, _ = get_user_model().objects.get_or_create(username=name)
    tokens[name] = Token.objects.get_or_create(user=user)[0].key
print("TOKENS=" + json.dumps(tokens))
"""


@dataclass
class FaultStack(Stack):
    redis: PrivateRedis | None = None
    postgres: PrivatePostgres | None = None
    beat: Process | None = None
    fake: object = None
    tokens: dict[str, str] = field(default_factory=dict)
    workdir: Path | None = None

    def spawn(self, name: str, args: list[str], *, env: dict[str, str] | None = None) -> Process:
        return super().spawn(f"faults-{name}", args, env=env)

    def live_workers(self) -> list[Process]:
        return [worker for worker in self.workers if worker.popen.poll() is None]

    def start_beat(self) -> None:
        self.beat = self.spawn(
            "beat",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "beat",
                "--loglevel=INFO",
                "-s",
                str(self.workdir / "beat-schedule"),
            ],
        )

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.postgres.url(DATABASE), row_factory=dict_row, autocommit=True, connect_timeout=5)

    def row(self, execution_id: str) -> dict | None:
        with self.connect() as conn:
            return conn.execute("SELECT * FROM mcp_tools_toolexecution WHERE id = %s", [execution_id]).fetchone()

    def terminal_row(self, execution_id: str, *, timeout: float = 30) -> dict | None:
        """The row once it is final (the reaper may repair it a little later), else as it is."""
        try:
            return wait_until(
                lambda: (
                    (row := self._row_or_none(execution_id))
                    and row["status"] in ("completed", "failed", "cancelled")
                    and row
                ),
                timeout=timeout,
                interval=0.2,
                what=f"execution {execution_id} to be final in the database",
            )
        except TimeoutError:
            return self._row_or_none(execution_id)

    def _row_or_none(self, execution_id: str) -> dict | None:
        try:
            return self.row(execution_id)
        except psycopg.OperationalError:
            return None  # PostgreSQL is (still) down

    def stop(self) -> None:
        for process in [*self.workers, self.daphne, self.beat]:
            if process is not None:
                process.stop()
        if self.fake is not None:
            self.fake.terminate()
            self.fake.wait(10)
        for server in (self.redis, self.postgres):
            if server is not None:
                server.stop()


def _fault_env(redis: PrivateRedis, postgres: PrivatePostgres, anthropic_url: str, data_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": postgres.url(DATABASE),
        "REDIS_URL": redis.url,
        "REDIS_NAMESPACE": "faults",
        "SECRET_KEY": "fault-injection-only",
        "ALLOWED_HOSTS": "localhost,127.0.0.1",
        "DATA_DIR": str(data_dir),
        "PYTHONUNBUFFERED": "1",
        "CELERY_LOG_LEVEL": "INFO",  # start_worker waits for "ready."; the kill row reads "received"
        "LLM_PROVIDER": "anthropic",
        "ANTHROPIC_API_KEY": "test-key",
        "ANTHROPIC_BASE_URL": anthropic_url,
        "ANTHROPIC_TIMEOUT_S": "2",  # a stalled stream is noticed after 2 s
        "MCP_ALLOW_PRIVATE_URLS": "true",  # the test pages live on 127.0.0.1
        "MCP_FETCH_TIMEOUT_S": "3",
        "MCP_RETRY_BACKOFF_S": "0.2",
        "MCP_RETRY_BACKOFF_MAX_S": "1",
        "CELERY_VISIBILITY_TIMEOUT_S": "10",  # above the tool time limit (TOOL_TIMEOUT_S)
        "MCP_HEARTBEAT_INTERVAL_S": "1",
        "MCP_HEARTBEAT_STALE_S": "3",
        "MCP_REAPER_INTERVAL_S": "1",
        "MCP_CONTROL_POLL_S": "0.2",
        "MCP_DELIVERY_POLL_S": "1",
        "CELERY_WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
        # Many executions for a few users; the limits have tests of their own.
        "MCP_MAX_CONCURRENT_EXECUTIONS": "100000",
        "MCP_RATE_LIMIT_PER_MINUTE": "1000000",
        "MCP_WS_MAX_CONNECTIONS_PER_USER": "1000",
    }


def _build(workdir: Path) -> FaultStack:
    redis = PrivateRedis(workdir / "redis").start()
    postgres = PrivatePostgres(workdir / "postgres").start()
    postgres.create_database(DATABASE)
    fake, fake_url = _start_fake_anthropic(dict(os.environ))
    port = free_port()
    stack = FaultStack(
        http_url=f"http://127.0.0.1:{port}",
        ws_url=f"ws://127.0.0.1:{port}",
        env=_fault_env(redis, postgres, fake_url, workdir / "data"),
        anthropic=FakeAnthropicControl(fake_url),
        daphne=None,  # type: ignore[arg-type]
        redis=redis,
        postgres=postgres,
        fake=fake,
        workdir=workdir,
    )
    for command in (["migrate", "--noinput"], ["shell", "-c", SETUP_SCRIPT]):
        result = stack.run_manage(*command)
        assert result.returncode == 0, result.stdout + result.stderr
    stack.tokens = json.loads(result.stdout.split("TOKENS=")[1].splitlines()[0])
    stack.daphne = stack.spawn(
        "daphne", [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"]
    )
    wait_until(
        lambda: http_ok(stack.http_url + "/admin/login/") or stack.daphne.popen.poll() is not None,
        timeout=STARTUP_TIMEOUT_S,
        what="daphne",
    )
    assert stack.daphne.popen.poll() is None, stack.daphne.log()[-3000:]
    for _ in range(2):
        stack.start_worker()
    stack.start_beat()
    return stack


@pytest.fixture(scope="session")
def fault_stack() -> FaultStack:
    workdir = Path(tempfile.mkdtemp(prefix="mcp-faults-"))
    stack = None
    try:
        stack = _build(workdir)
        yield stack
    finally:
        if stack is not None:
            stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def stack_ready(fault_stack: FaultStack) -> FaultStack:
    """Two live workers, a live daphne and beat, servers up, the fake API reset."""
    for process in (fault_stack.daphne, fault_stack.beat):
        assert process.popen.poll() is None, f"{process.name} died:\n{process.log()[-3000:]}"
    for server in (fault_stack.redis, fault_stack.postgres):
        if not server.answers():
            server.start()  # an earlier test failed between stop and start
    while len(fault_stack.live_workers()) < 2:
        fault_stack.start_worker()
    fault_stack.anthropic.reset()
    fault_stack.anthropic.set_default({"tokens": 20})
    return fault_stack
