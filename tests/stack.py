"""The production topology as a test fixture: real processes, real services.

``stack`` (marked tests only: ``-m production``, with ``REDIS_URL`` and
``DATABASE_URL`` set) gives a running deployment:

* a daphne process serving ``config.asgi:application``,
* ``celery -A config worker`` processes (the production command: the engine's pool),
* Redis (the database number in ``REDIS_URL``) and the PostgreSQL test
  database pytest-django created — the test process shares it, so tests use
  the ORM to create users and check rows (``django_db(transaction=True)``),
* the fake Messages API (``tests/fake_anthropic.py``) as a subprocess, which
  the server processes call through the real ``anthropic`` SDK;
* the test tools: the processes load ``tests/tools/gantz_fixture.yaml``
  (``GANTZ_CONFIG``) and the app ``tests.tool_app`` (``MCP_EXTRA_APPS``), and
  its http tools call ``tests/tools/http_target.py``, served from this process.
  Which tools exist for a test is still the test's ``Tool`` rows: the project's
  unless it syncs the test tools (``tests/tools/conftest.py``).

The processes live for the whole session; each test gets the stack reset
(fake API script, Redis keys of the app). Process output goes to
``test-artifacts/stack/*.log`` for post-mortems.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
LOG_DIR = ROOT / "test-artifacts" / "stack"
STARTUP_TIMEOUT_S = 60


def run_manage(
    env: dict[str, str], *args: str, timeout: float = 120, input: str | None = None
) -> subprocess.CompletedProcess:
    """``python manage.py <args>`` in the project with ``env``, output captured."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition, *, timeout: float, interval: float = 0.05, what: str = "condition"):
    """Poll ``condition`` until it returns a truthy value; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"Timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class FakeAnthropicControl:
    """Drives the fake Messages API subprocess over its control endpoints."""

    def __init__(self, url: str) -> None:
        self.url = url

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"content-type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def set_script(self, behaviors: list[dict]) -> None:
        self._call("POST", "/_control/script", behaviors)

    def set_default(self, behavior: dict) -> None:
        self._call("POST", "/_control/default", behavior)

    def reset(self) -> None:
        self._call("POST", "/_control/reset", {})

    def release(self) -> None:
        """Let the streams held by a ``hold_after`` behavior go on."""
        self._call("POST", "/_control/release", {})

    def requests(self, *, wait: int = 0, timeout: float = 10) -> list[dict]:
        query = f"?wait={wait}&timeout={timeout}" if wait else ""
        return self._call("GET", "/_control/requests" + query)


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)


@dataclass
class Stack:
    http_url: str
    ws_url: str
    env: dict[str, str]
    anthropic: FakeAnthropicControl
    daphne: Process
    workers: list[Process] = field(default_factory=list)
    started_workers: int = 0

    def spawn(self, name: str, args: list[str], *, env: dict[str, str] | None = None) -> Process:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        log_path = LOG_DIR / f"{name}.log"
        log_file = open(log_path, "ab")  # noqa: SIM115 (the process writes to it after we return)
        popen = subprocess.Popen(
            args, cwd=ROOT, env=env or self.env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
        return Process(name, popen, log_path)

    def start_worker(self, **settings: str) -> Process:
        """Start one more worker with the production command (pool and concurrency from the settings,
        ``settings`` overriding the stack's environment) and wait until it consumes."""
        self.started_workers += 1
        index = self.started_workers  # never reused, also after a test removed a worker it killed
        worker = self.spawn(
            f"worker{index}",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-n",
                f"worker{index}-{os.getpid()}@%h",
                "--loglevel=INFO",
                "--without-mingle",
                "--without-gossip",
            ],
            env={**self.env, **settings} if settings else None,
        )
        offset = len(worker.log()) if worker.log_path.exists() else 0
        self.workers.append(worker)  # before waiting: a worker that never gets ready is still stopped at teardown
        wait_until(
            lambda: "ready." in worker.log()[offset:] or worker.popen.poll() is not None,
            timeout=STARTUP_TIMEOUT_S,
            what=f"celery worker{index}",
        )
        assert worker.popen.poll() is None, worker.log()[-3000:]
        return worker

    def run_manage(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 120, input: str | None = None
    ) -> subprocess.CompletedProcess:
        return run_manage({**self.env, **(env or {})}, *args, timeout=timeout, input=input)

    def stop(self) -> None:
        for process in [*self.workers, self.daphne]:
            process.stop()


def _stack_env(
    database_name: str, anthropic_url: str, data_dir: Path, *, port: int, tool_http_url: str
) -> dict[str, str]:
    from django.conf import settings

    from tests.tools.fixture import tool_env

    db = settings.DATABASES["default"]
    database_url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{database_name}"
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": settings.REDIS_URL,
        "REDIS_NAMESPACE": settings.REDIS_NAMESPACE,
        "SECRET_KEY": settings.SECRET_KEY,
        "ANTHROPIC_API_KEY": "test-key",
        "ANTHROPIC_BASE_URL": anthropic_url,
        "ANTHROPIC_TIMEOUT_S": "10",
        "LLM_PROVIDER": "anthropic",
        "MCP_ALLOW_PRIVATE_URLS": "true",
        "MCP_RETRY_BACKOFF_S": "0.2",
        "MCP_RETRY_BACKOFF_MAX_S": "1",
        "ALLOWED_HOSTS": "localhost,127.0.0.1",
        # Load tests run many executions for one user; the limits have tests of their own.
        "MCP_MAX_CONCURRENT_EXECUTIONS": "10000",
        "MCP_RATE_LIMIT_PER_MINUTE": "100000",
        "MCP_WS_MAX_CONNECTIONS_PER_USER": "10000",
        "DATA_DIR": str(data_dir),
        # One host: daphne and the workers write their metrics to one directory; /metrics merges them.
        "PROMETHEUS_MULTIPROC_DIR": str(data_dir / "metrics"),
        "METRICS_BEARER_TOKEN": secrets.token_urlsafe(32),
        "PYTHONUNBUFFERED": "1",
        "CELERY_LOG_LEVEL": "INFO",  # the stack waits for the worker's "ready." line
        "SERVICE_URL": f"http://127.0.0.1:{port}",  # gantz.yaml's service_health calls it
        **tool_env(tool_http_url),
    }


def _start_fake_anthropic(env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    popen = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_anthropic", "--port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    line = popen.stdout.readline().strip()
    assert line.startswith("listening on "), line
    return popen, line.removeprefix("listening on ")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status < 500
    except OSError:
        return False


@pytest.fixture(scope="session")
def _stack_session(django_db_setup, django_db_blocker, tmp_path_factory):
    from django.conf import settings
    from django.db import connection

    from tests.tools.http_target import running_target

    if not settings.PRODUCTION:
        pytest.fail("The production stack needs REDIS_URL and DATABASE_URL (run with -m production via ./dev test).")
    with running_target() as tool_http_url:
        fake, fake_url = _start_fake_anthropic(dict(os.environ))
        port = free_port()
        env = _stack_env(
            connection.settings_dict["NAME"],
            fake_url,
            tmp_path_factory.mktemp("stack-data"),
            port=port,
            tool_http_url=tool_http_url,
        )
        stack = Stack(
            http_url=f"http://127.0.0.1:{port}",
            ws_url=f"ws://127.0.0.1:{port}",
            env=env,
            anthropic=FakeAnthropicControl(fake_url),
            daphne=None,  # type: ignore[arg-type]
        )
        stack.daphne = stack.spawn(
            "daphne", [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"]
        )
        try:
            wait_until(
                lambda: http_ok(stack.http_url + "/admin/login/") or stack.daphne.popen.poll() is not None,
                timeout=STARTUP_TIMEOUT_S,
                what="daphne",
            )
            assert stack.daphne.popen.poll() is None, stack.daphne.log()[-3000:]
            stack.start_worker()
            yield stack
        finally:
            stack.stop()
            fake.terminate()
            fake.wait(10)


def clear_app_keys() -> None:
    """Delete the app's Redis keys (cache, event logs, counters) but not Celery's queues."""
    from django.conf import settings

    if not settings.PRODUCTION:
        return
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    for pattern in (f"{settings.REDIS_NAMESPACE}:*",):
        keys = list(client.scan_iter(pattern, count=1000))
        if keys:
            client.delete(*keys)


@pytest.fixture
def stack(_stack_session, transactional_db) -> Stack:
    _stack_session.anthropic.reset()
    _stack_session.anthropic.set_default({"tokens": 20})
    clear_app_keys()
    for process in [_stack_session.daphne, *_stack_session.workers]:
        assert process.popen.poll() is None, f"{process.name} died:\n{process.log()[-3000:]}"
    return _stack_session
