"""Private Redis and PostgreSQL servers that a test may stop and start at will.

The fault-injection suite restarts Redis and PostgreSQL under a running
service. It must never touch the machine's shared servers (6379, 5432: other
test runs use them), so it brings its own, on free ports, in a temporary
directory, and throws them away at the end::

    redis = PrivateRedis(workdir / "redis").start()     # redis.url
    postgres = PrivatePostgres(workdir / "pg").start()  # postgres.url("mcp")
    redis.restart(); postgres.restart()                 # same port, data kept

Redis keeps its data across a restart (append-only file, fsync always), like a
production Redis with persistence: what is lost to a restart is connections,
not messages. PostgreSQL refuses to run as root, so when the tests run as root
the cluster belongs to the ``postgres`` user (``runuser``).

``not_found_server()`` serves a page that answers 404, for the fetch faults.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
from pathlib import Path

import psycopg
import redis

from tests.e2e.helpers import page_server
from tests.stack import free_port, wait_until

START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 30


class PrivateRedis:
    """A ``redis-server`` of our own; ``stop``/``start`` keep port and data."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.popen: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        self.directory.mkdir(parents=True, exist_ok=True)
        log = open(self.directory / "redis.log", "ab")  # noqa: SIM115 (the server writes to it after we return)
        self.popen = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
                "--protected-mode",
                "no",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(self.answers, timeout=START_TIMEOUT_S, what=f"redis-server on port {self.port}")
        return self

    def answers(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        """SIGTERM: Redis finishes its append-only file and exits, as on a restart."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            self.popen.wait(STOP_TIMEOUT_S)
        self.popen = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def flush(self) -> None:
        """FLUSHALL: every key gone at once (event logs, heartbeats, the cache, the broker's queue)."""
        redis.Redis(port=self.port, socket_timeout=5).flushall()


def _postgres_bin() -> Path:
    """The newest installed server's binaries (initdb refuses to mix versions)."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not candidates:
        raise RuntimeError("No PostgreSQL server binaries under /usr/lib/postgresql/*/bin.")
    return Path(candidates[-1]).parent


class PrivatePostgres:
    """A throw-away PostgreSQL cluster (initdb + pg_ctl) on a free port."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.data = directory / "data"
        self.port = free_port()
        self.bin = _postgres_bin()
        self.as_postgres = os.geteuid() == 0  # initdb refuses root

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")

    def start(self) -> PrivatePostgres:
        if not self.data.exists():
            self._init()
        # fsync off: a test cluster needs speed, not durability across power loss.
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.directory / "postgres.log"),
            "-w",
            "-t",
            str(START_TIMEOUT_S),
            "-o",
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off "
            f"-c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
            "start",
        )
        return self

    def _init(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.as_postgres:
            shutil.chown(self.directory, "postgres", "postgres")
            # The postgres user must be able to reach it (mkdtemp makes 0700 directories).
            self.directory.parent.chmod(0o755)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        )

    def create_database(self, name: str) -> None:
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

    def stop(self) -> None:
        """Fast shutdown: open connections are cut, as when the server restarts."""
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", str(STOP_TIMEOUT_S), "stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def answers(self) -> bool:
        try:
            with psycopg.connect(self.url("postgres"), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False


def not_found_server():
    """``with not_found_server() as url:`` a URL on 127.0.0.1 that answers 404."""
    return page_server(status=404, html="<html><body><h1>Not found</h1></body></html>", path="/missing")
