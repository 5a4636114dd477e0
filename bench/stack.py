"""The production topology for the benchmark: real processes, started and stopped here.

``BenchStack`` owns everything one benchmark run needs and nothing it does not:

* a PostgreSQL database ``mcp_bench`` (dropped, created and migrated at start),
* Redis on 127.0.0.1:6379, a dedicated database number and a namespace of its
  own (``REDIS_NAMESPACE``), so other runs on the same Redis are untouched,
* the benchmark's Messages API (``bench/messages_api.py``, one asyncio loop) as a subprocess,
* for each *variant* (server × channel layer × processes …): ASGI server
  processes (daphne or uvicorn; one by default, or two on two ports) and
  Celery worker processes (one by default, or two), each started with the
  production command ``python -m celery -A config worker`` (no ``-c``, no
  ``-P``: the engine's pool and its concurrency of 1,000 are the settings'
  defaults), restarted per variant because the settings are read from the
  environment at start::

    stack = BenchStack(redis_db=14).setup(users=1000)
    server = stack.start_variant(Variant("daphne-pubsub"))
    ...
    stack.stop_variant(server); stack.teardown()

Process output goes to ``test-artifacts/bench/*.log``.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from tests.stack import Process, free_port, http_ok, wait_until  # noqa: F401  (re-exported for bench.run)

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
LOG_DIR = ROOT / "test-artifacts" / "bench"
STARTUP_TIMEOUT_S = 60
DATABASE = "mcp_bench"
PG_URL = "postgres://postgres@127.0.0.1:5432"
BENCH_PASSWORD_HASH = "!"  # unusable password: the bench users authenticate by token only
# The production command, verbatim (README): no -c, no -P.
WORKER_COMMAND = [sys.executable, "-m", "celery", "-A", "config", "worker"]


@dataclass(frozen=True)
class Variant:
    """One configuration of the service under test.

    ``server``: daphne | uvicorn; ``layer``: pubsub | core (CHANNEL_LAYER);
    ``coalesce_ms`` / ``coalesce_bytes``: MCP_COALESCE_MS / MCP_COALESCE_BYTES;
    ``workers``: Celery worker processes (the production command each);
    ``servers``: ASGI server processes, each on its own port (clients split between them).
    """

    name: str
    server: str = "daphne"
    layer: str = "pubsub"
    coalesce_ms: int | None = None
    coalesce_bytes: int | None = None
    workers: int = 1
    servers: int = 1
    extra_env: tuple[tuple[str, str], ...] = ()

    def env(self) -> dict[str, str]:
        env = {"CHANNEL_LAYER": self.layer, **dict(self.extra_env)}
        if self.coalesce_ms is not None:
            env["MCP_COALESCE_MS"] = str(self.coalesce_ms)
        if self.coalesce_bytes is not None:
            env["MCP_COALESCE_BYTES"] = str(self.coalesce_bytes)
        return env


@dataclass
class Proc(Process):
    """The test stack's process (``tests.stack.Process``: its log, a clean stop) plus what the benchmark reads."""

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log(self) -> str:
        return super().log() if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.popen.poll() is None


@dataclass
class Server:
    """A running variant: its ASGI server processes (one port each) and its Celery workers."""

    variant: Variant
    ports: list[int] = field(default_factory=list)
    asgis: list[Proc] = field(default_factory=list)
    workers: list[Proc] = field(default_factory=list)

    @property
    def ws_urls(self) -> list[str]:
        return [f"ws://127.0.0.1:{port}" for port in self.ports]

    @property
    def ws_url(self) -> str:
        return self.ws_urls[0]

    @property
    def asgi(self) -> Proc:
        return self.asgis[0]


def spawn(name: str, args: list[str], env: dict[str, str]) -> Proc:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_path = LOG_DIR / f"{name}.log"
    log_file = open(log_path, "wb")  # noqa: SIM115 (the process writes to it after we return)
    popen = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    return Proc(name, popen, log_path)


def redis_server_pid(port: int = 6379) -> int | None:
    """The pid of the redis-server listening on ``port`` (shared with other runs: see docs)."""
    for proc in psutil.process_iter(["name", "cmdline"]):
        if (proc.info["name"] or "").startswith("redis-server") and f":{port}" in " ".join(proc.info["cmdline"] or []):
            return proc.pid
    return None


def postgres_pid(port: int = 5432) -> int | None:
    """The PostgreSQL server's main process (its backends are its children; shared with other runs)."""
    for proc in psutil.process_iter(["name", "ppid"]):
        if proc.info["name"] == "postgres":
            try:
                if psutil.Process(proc.info["ppid"]).name() != "postgres":
                    return proc.pid
            except psutil.Error:
                continue
    return None


class BenchStack:
    """Database, Redis namespace and fake Messages API for one run; variants on top."""

    def __init__(self, *, redis_db: int = 14) -> None:
        self.namespace = f"bench{os.getpid()}"
        self.redis_url = f"redis://127.0.0.1:6379/{redis_db}"
        self.fake: subprocess.Popen | None = None
        self.fake_url = ""
        self.tokens: list[str] = []

    def base_env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "REDIS_URL": self.redis_url,
            "REDIS_NAMESPACE": self.namespace,
            "DATABASE_URL": f"{PG_URL}/{DATABASE}",
            "SECRET_KEY": "bench-only-secret-key",
            "ALLOWED_HOSTS": "localhost,127.0.0.1",
            "ANTHROPIC_API_KEY": "bench-key",
            "ANTHROPIC_BASE_URL": self.fake_url,
            "ANTHROPIC_TIMEOUT_S": "60",
            "LLM_PROVIDER": "anthropic",
            "MCP_MAX_CONCURRENT_EXECUTIONS": "1000000",
            "MCP_RATE_LIMIT_PER_MINUTE": "1000000",
            "LOG_LEVEL": "WARNING",
            "CELERY_LOG_LEVEL": "INFO",  # the "ready." line tells us a worker consumes
            "PYTHONUNBUFFERED": "1",
        }

    # -- run-wide set-up ------------------------------------------------------

    def setup(self, *, users: int) -> BenchStack:
        self._start_fake()
        self._create_database()
        self.tokens = self._create_users(users)
        return self

    def _start_fake(self) -> None:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.fake = subprocess.Popen(
            [sys.executable, "-m", "bench.messages_api", "--port", "0"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=open(LOG_DIR / "fake-api.log", "wb"),  # noqa: SIM115 (the process writes to it after we return)
            text=True,
            start_new_session=True,
        )
        line = self.fake.stdout.readline().strip()
        if not line.startswith("listening on "):
            raise RuntimeError(f"fake Messages API did not start: {line!r}")
        self.fake_url = line.removeprefix("listening on ")

    def fake_control(self, path: str, body: Any) -> None:
        request = urllib.request.Request(
            self.fake_url + path,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"content-type": "application/json"},
        )
        urllib.request.urlopen(request, timeout=30).read()

    def _create_database(self) -> None:
        import psycopg

        with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {DATABASE}")
        for command in (["migrate", "--noinput", "-v", "0"], ["sync_tools"]):
            subprocess.run(
                [sys.executable, "manage.py", *command],
                cwd=ROOT,
                env=self.base_env(),
                check=True,
                stdout=subprocess.DEVNULL,
            )

    def active_executions(self) -> int:
        """Executions not ended yet (waiting or running), in the benchmark's database."""
        import psycopg

        with psycopg.connect(f"{PG_URL}/{DATABASE}", autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM mcp_tools_toolexecution WHERE status IN ('pending', 'running', 'retrying')"
            ).fetchone()
        return row[0] if row else 0

    def _create_users(self, count: int) -> list[str]:
        """``count`` users with DRF tokens, one per benchmark client; returns the keys."""
        import psycopg

        tokens = [os.urandom(20).hex() for _ in range(count)]
        with psycopg.connect(f"{PG_URL}/{DATABASE}", autocommit=True) as conn, conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff,"
                " is_active, date_joined) VALUES (%s, false, %s, '', '', '', false, true, now())",
                [(BENCH_PASSWORD_HASH, f"bench{i}") for i in range(count)],
            )
            cur.executemany(
                "INSERT INTO authtoken_token (key, user_id, created) "
                "SELECT %s, id, now() FROM auth_user WHERE username = %s",
                [(key, f"bench{i}") for i, key in enumerate(tokens)],
            )
        return tokens

    def teardown(self) -> None:
        if self.fake is not None:
            self.fake.terminate()
            self.fake.wait(10)
        self.clear_redis()

    def clear_redis(self) -> None:
        import redis

        client = redis.Redis.from_url(self.redis_url)
        keys = [
            k
            for pattern in (f"{self.namespace}*", f"*{self.namespace}*")
            for k in client.scan_iter(pattern, count=1000)
        ]
        if keys:
            client.delete(*set(keys))

    # -- variants ---------------------------------------------------------------

    def start_variant(self, variant: Variant) -> Server:
        env = {**self.base_env(), **variant.env()}
        # Celery logs at production's level (WARNING): at INFO it writes lines for every
        # task, CPU that production does not spend. Readiness is read from Redis instead.
        env.pop("CELERY_LOG_LEVEL", None)
        server = Server(variant)
        try:
            for index in range(variant.servers):
                port = free_port()
                if variant.server == "uvicorn":
                    args = [
                        sys.executable,
                        "-m",
                        "uvicorn",
                        "config.asgi:application",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(port),
                        "--log-level",
                        "warning",
                        "--no-access-log",
                        "--backlog",
                        "4096",
                    ]
                else:
                    args = [
                        sys.executable,
                        "-m",
                        "daphne",
                        "-b",
                        "127.0.0.1",
                        "-p",
                        str(port),
                        "-v",
                        "0",
                        "config.asgi:application",
                    ]
                asgi = spawn(f"{variant.name}-asgi{index}", args, env)
                server.ports.append(port)
                server.asgis.append(asgi)
                wait_until(
                    lambda port=port, asgi=asgi: http_ok(f"http://127.0.0.1:{port}/health/") or not asgi.alive(),
                    timeout=STARTUP_TIMEOUT_S,
                    what=f"{variant.server} on port {port}",
                )
                if not asgi.alive():
                    raise RuntimeError(f"{variant.server} died:\n{asgi.log()[-3000:]}")
            for index in range(variant.workers):
                server.workers.append(self._start_worker(variant, index, env))
        except BaseException:  # a failed or interrupted start-up leaves nothing running
            self.stop_variant(server)
            raise
        return server

    def _start_worker(self, variant: Variant, index: int, env: dict[str, str]) -> Proc:
        # Exactly the production command: pool, concurrency and the rest come from
        # the settings (the environment above), as the README tells users to run it.
        # Two workers on one host share a node name; Celery warns about it and works
        # (the engine names itself by host, pid and a random part, not by node name).
        worker = spawn(f"{variant.name}-worker{index}", WORKER_COMMAND, env)
        try:
            wait_until(
                lambda: self._engine_beats(worker.pid) or not worker.alive(),
                timeout=STARTUP_TIMEOUT_S,
                what=f"celery worker {index}",
            )
            if not worker.alive():
                raise RuntimeError(f"celery worker died:\n{worker.log()[-3000:]}")
            # The engine beats just before Celery's consumer connects to the broker; tokens sent
            # before that wait in the queue, and the variant's warm-up runs to its end either way.
        except BaseException:
            worker.stop()
            raise
        return worker

    def _engine_beats(self, pid: int) -> bool:
        """The worker's engine has started: its heartbeat key (``engine:<host>:<pid>:<id>``) is in Redis."""
        import redis

        client = redis.Redis.from_url(self.redis_url)
        return any(True for _ in client.scan_iter(f"{self.namespace}:*engine:*:{pid}:*", count=1000))

    def stop_variant(self, server: Server) -> None:
        for proc in [*server.asgis, *server.workers]:
            proc.stop()
