"""Secrets and files on the embedded default, with ``manage.py serve`` as a newcomer runs it.

``DATA_DIR`` is 0700 and its files (secret key, demo password, the SQLite
database with its -wal and -shm) 0600; the demo user is an ordinary user
unless ``--demo-admin``; its password and token are printed when created and
never again; no token reaches the server's output (daphne's access log for
``?token=`` requests, the embedded worker's httpx lines); ``serve`` listens
on 127.0.0.1 and warns loudly about anything reachable from outside.
"""

from __future__ import annotations

import io
import re
import signal
import sqlite3
import stat
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from django.contrib.auth import get_user_model

from mcp_tools.management.commands.serve import Command as ServeCommand
from mcp_tools.security.redact import RedactingFilter, redact
from tests.e2e.helpers import page_server, recv, recv_until_terminal, send
from tests.mcp.helpers import ROOT, embedded_env
from tests.stack import free_port, http_ok, wait_until

PRIVATE_FILES = ("secret_key", "demo_password", "db.sqlite3", "db.sqlite3-wal", "db.sqlite3-shm")


class Served:
    """``manage.py serve`` in a subprocess, its output (stdout and stderr) in a file."""

    def __init__(self, env: dict[str, str], output: Path, *args: str) -> None:
        self.port = free_port()
        self.output = output
        self.offset = output.stat().st_size if output.exists() else 0
        self.popen = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--port", str(self.port), *args],
            cwd=ROOT,
            env=env,
            stdout=output.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        wait_until(
            lambda: http_ok(self.url + "/accounts/login/") or self.popen.poll() is not None,
            timeout=60,
            what="manage.py serve",
        )
        assert self.popen.poll() is None, self.text()

    def text(self) -> str:
        return self.output.read_bytes()[self.offset :].decode(errors="replace")

    def stop(self) -> str:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            self.popen.wait(20)
        return self.text()


@pytest.fixture
def data_dir(tmp_path) -> Path:
    return tmp_path / "var"


def test_serve_keeps_its_files_private_shows_credentials_once_and_logs_no_token(data_dir, tmp_path):
    env = embedded_env(data_dir, MCP_ALLOW_PRIVATE_URLS="true", LOG_LEVEL="INFO")
    output = tmp_path / "serve.log"
    first = Served(env, output)
    try:
        demo = re.search(r"Demo user:\s+demo / (\S+)\s+token: (\w+)", first.text())
        assert demo, first.text()
        password, token = demo[1], demo[2]
        # A browser's ways of sending the token: the WebSocket and the event stream take ?token=.
        from websockets.sync.client import connect

        with (
            page_server() as page,
            connect(f"ws://127.0.0.1:{first.port}/ws/executions/?token={token}", open_timeout=10) as ws,
        ):
            send(ws, {"type": "execute", "tool": "summarize_content", "parameters": {"url": f"{page}?token={token}"}})
            accepted = recv(ws)
            assert recv_until_terminal(ws)[-1]["type"] == "execution.completed"
        events = httpx.get(f"{first.url}/api/executions/{accepted['execution_id']}/events/?token={token}", timeout=30)
        assert events.status_code == 200 and "execution.completed" in events.text
        login = httpx.post(f"{first.url}/api/auth/token/", data={"username": "demo", "password": password})
        assert login.json() == {"token": token}

        assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
        for name in PRIVATE_FILES:
            assert stat.S_IMODE((data_dir / name).stat().st_mode) == 0o600, name
        with closing(sqlite3.connect(data_dir / "db.sqlite3")) as db:
            demo_flags = db.execute("SELECT is_staff, is_superuser FROM auth_user WHERE username = 'demo'").fetchone()
        assert demo_flags == (0, 0)
    finally:
        text = first.stop()
    shown = [line for line in text.splitlines() if token in line]
    assert [line.split(":")[0] for line in shown] == ["Demo user", "Try"], shown  # shown once, nowhere else
    assert "token=[redacted]" in text  # the access log and the fetch were logged, without the token
    assert text.count(password) == 1

    second = Served(env, output)
    text = second.stop()
    assert token not in text and password not in text
    assert f"password in {data_dir / 'demo_password'}" in text and "drf_create_token demo" in text


def test_files_left_world_readable_by_older_versions_are_tightened(data_dir):
    data_dir.mkdir(mode=0o755)
    for name in ("secret_key", "demo_password", "db.sqlite3"):
        (data_dir / name).write_text("x" if name != "db.sqlite3" else "")
        (data_dir / name).chmod(0o644)
    env = embedded_env(data_dir)
    env.pop("SECRET_KEY", None)
    subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, check=True, capture_output=True)
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert {
        name: stat.S_IMODE((data_dir / name).stat().st_mode) for name in ("secret_key", "demo_password", "db.sqlite3")
    } == {"secret_key": 0o600, "demo_password": 0o600, "db.sqlite3": 0o600}


@pytest.mark.django_db
def test_demo_user_is_an_ordinary_user_unless_asked_and_follows_the_flag(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    command = ServeCommand()
    _, password, token, created = command.demo_user(admin=False)
    demo = get_user_model().objects.get(username="demo")
    assert created and not demo.is_staff and not demo.is_superuser and demo.check_password(password)
    assert stat.S_IMODE((tmp_path / "demo_password").stat().st_mode) == 0o600
    assert command.demo_user(admin=True)[2:] == (token, False)
    demo.refresh_from_db()
    assert demo.is_staff and demo.is_superuser
    command.demo_user(admin=False)
    demo.refresh_from_db()
    assert not demo.is_staff and not demo.is_superuser


@pytest.mark.parametrize(
    "host,warned",
    [("127.0.0.1", False), ("::1", False), ("localhost", False), ("0.0.0.0", True), ("::", True), ("192.0.2.10", True)],
)
def test_serve_warns_loudly_when_listening_beyond_this_machine(host, warned):
    stderr = io.StringIO()
    ServeCommand(stderr=stderr).warn_if_reachable_from_outside(host)
    assert ("WARNING" in stderr.getvalue()) is warned
    if host in ("0.0.0.0", "::"):
        assert "EVERY network interface" in stderr.getvalue()


def test_serve_listens_on_this_machine_only_by_default():
    parser = ServeCommand().create_parser("manage.py", "serve")
    assert parser.parse_args([]).host == "127.0.0.1"


# --- What the redaction catches ----------------------------------------------------------------------

TOKEN = "6ff440278f99436283feff54b3bc529274d8da9a"


@pytest.mark.parametrize(
    "line",
    [
        f'127.0.0.1:5123 - - [07/Dec/2026:10:00:00] "WSCONNECT /ws/executions/?token={TOKEN}" - -',
        f'"GET /api/executions/1/events/?after_seq=2&token={TOKEN} HTTP/1.1" 200',
        f'HTTP Request: GET http://example.com/page?token={TOKEN} "HTTP/1.1 200 OK"',
        f"Authorization: Token {TOKEN}",
        f"Authorization: Bearer {TOKEN}",
        f"the token is {TOKEN}",
        "redis://:s3cret-pass@redis.internal:6379/0",
        "postgres://mcp:s3cret-pass@db.internal/mcp",
        "{'password': 's3cret-pass', 'username': 'alice'}",
        "username=alice&password=s3cret-pass",
        "key sk-ant-api03-abcdefghijklmnop",
    ],
)
def test_redaction_removes_tokens_passwords_and_keys(line):
    cleaned = redact(line)
    assert TOKEN not in cleaned and "s3cret-pass" not in cleaned and "abcdefghijklmnop" not in cleaned
    assert "[redacted]" in cleaned


def test_redaction_keeps_what_is_not_a_secret():
    line = "Execution 032a9e0b-be9a-4579-a146-206c0a37d74a attempt 2: llm_overloaded (GET /api/tools/?page=2)"
    assert redact(line) == line


def test_log_records_are_redacted_in_their_arguments_and_tracebacks():
    import logging

    try:
        raise ValueError(f"could not connect to redis://:s3cret-pass@host ({TOKEN})")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "GET %s", (f"/?token={TOKEN}",), sys.exc_info())
    assert RedactingFilter().filter(record)
    text = logging.Formatter().format(record)
    assert TOKEN not in text and "s3cret-pass" not in text and "GET /?token=[redacted]" in text
    access = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:1", "GET", f"/x?token={TOKEN}", "1.1", 200),
        None,
    )
    assert RedactingFilter(keep_arguments=True).filter(access)
    assert access.args[2] == "/x?token=[redacted]" and access.args[4] == 200


def test_settings_log_through_the_redacting_filter():
    from django.conf import settings

    console = settings.LOGGING["handlers"]["console"]
    assert console["filters"] == ["redact"]
    assert settings.LOGGING["filters"]["redact"]["()"] == "mcp_tools.security.redact.RedactingFilter"
