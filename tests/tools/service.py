"""The service under test, seen from a user's side, in either topology.

``Service`` is what a test of the tools needs and nothing more: the server's
addresses, a token and a password per user, ``manage.py`` against the same
database, and the whole database as text (to search it for what must not be
stored). ``tests/tools/conftest.py`` builds one per topology:

* embedded: ``manage.py serve`` in a subprocess (daphne, the embedded worker
  thread, SQLite in a temporary ``DATA_DIR``), started once per session;
* production: the session's stack (``tests/stack.py``: daphne, ``celery
  worker`` processes, Redis, PostgreSQL), per test.

Both load ``tests/tools/gantz_fixture.yaml`` and the app ``tests.tool_app``.
The users are the same in both (``create_users``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.helpers import TERMINAL, recv, send, ws_connect
from tests.stack import run_manage

# name: (staff and superuser, groups, permissions as app_label.codename)
USERS: dict[str, tuple[bool, tuple[str, ...], tuple[str, ...]]] = {
    "alice": (False, (), ()),
    "bob": (False, (), ()),
    "opsy": (False, ("ops",), ()),
    "viewer": (False, (), ("auth.view_user",)),
    "root": (True, (), ()),
}


def password_of(username: str) -> str:
    return f"pw-{username}-tools"


def create_users() -> dict[str, str]:
    """The test users (``USERS``), their groups and permissions; returns their API tokens by name."""
    from django.contrib.auth.models import Group, Permission, User
    from rest_framework.authtoken.models import Token

    tokens = {}
    for name, (staff, groups, permissions) in USERS.items():
        user = User.objects.create_user(name, password=password_of(name), is_staff=staff, is_superuser=staff)
        for group in groups:
            user.groups.add(Group.objects.get_or_create(name=group)[0])
        for permission in permissions:
            app_label, codename = permission.split(".")
            user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
        tokens[name] = Token.objects.create(user=user).key
    return tokens


# Run by ``manage.py shell -c`` against the embedded server's database.
CREATE_USERS_COMMAND = (
    "import json; from tests.tools.service import create_users; print('TOKENS=' + json.dumps(create_users()))"
)


def tokens_from_output(output: str) -> dict[str, str]:
    return json.loads(re.search(r"TOKENS=(\{.*\})", output)[1])


@dataclass
class Service:
    topology: str  # "embedded" or "production"
    http_url: str
    ws_url: str
    env: dict[str, str]  # the server's environment, for manage.py against the same database
    tokens: dict[str, str]
    dump_database: Callable[[], str] = field(repr=False)
    # Everything the API answered through ``api()``/``execute_ws``: searched for secrets.
    answers: list[str] = field(default_factory=list, repr=False)

    def api(self, username: str) -> httpx.Client:
        """A REST client authenticated as ``username``; every answer body is kept in ``answers``."""
        return httpx.Client(
            base_url=self.http_url,
            timeout=60,
            headers={"Authorization": f"Token {self.tokens[username]}"},
            event_hooks={"response": [self._keep]},
        )

    def _keep(self, response: httpx.Response) -> None:
        response.read()
        self.answers.append(response.text)

    def run_manage(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess:
        return run_manage({**self.env, **(env or {})}, *args, timeout=timeout)

    def run_tool(self, tool: str, *args: str, user: str = "alice") -> subprocess.CompletedProcess:
        """``manage.py run_tool`` as Gantz runs it, recorded as ``user``."""
        return self.run_manage("run_tool", tool, "--user", user, *args)

    @contextmanager
    def ws(self, username: str) -> Iterator[Any]:
        with ws_connect(self.ws_url, self.tokens[username]) as connection:
            yield _KeptConnection(connection, self.answers)

    def execute_ws(
        self, username: str, tool: str, parameters: dict | None = None, *, use_cache: bool = False
    ) -> list[dict]:
        """Execute over the WebSocket and follow to the end; every message from ``execution.accepted`` on."""
        with self.ws(username) as ws:
            ws.send({"type": "execute", "tool": tool, "parameters": parameters or {}, "use_cache": use_cache})
            return ws.until_terminal()

    @contextmanager
    def admin(self, username: str = "root") -> Iterator[httpx.Client]:
        """A browser-like client logged in to the admin through its login form."""
        with httpx.Client(
            base_url=self.http_url, timeout=30, follow_redirects=True, event_hooks={"response": [self._keep]}
        ) as client:
            client.get("/admin/login/")
            response = client.post(
                "/admin/login/?next=/admin/",
                data={
                    "username": username,
                    "password": password_of(username),
                    "next": "/admin/",
                    "csrfmiddlewaretoken": client.cookies["csrftoken"],
                },
                headers={"Referer": self.http_url + "/admin/login/"},
            )
            assert response.url.path == "/admin/", f"admin login failed: {response.url}"
            yield client


class _KeptConnection:
    """A WebSocket connection whose received frames are also kept in ``answers``."""

    def __init__(self, connection: Any, answers: list[str]) -> None:
        self.connection = connection
        self.answers = answers

    def send(self, message: dict) -> None:
        send(self.connection, message)

    def recv(self, timeout: float = 30) -> dict:
        message = recv(self.connection, timeout)
        self.answers.append(json.dumps(message))
        return message

    def until(self, predicate: Callable[[dict], bool], timeout: float = 60) -> list[dict]:
        messages = []
        while True:
            messages.append(self.recv(timeout))
            if predicate(messages[-1]):
                return messages

    def until_terminal(self, timeout: float = 60) -> list[dict]:
        return self.until(lambda message: message["type"] in TERMINAL or message["type"] == "error", timeout)


# --- Databases as text ----------------------------------------------------------------


def sqlite_dump(path: Path) -> Callable[[], str]:
    def dump() -> str:
        import sqlite3

        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return "\n".join(connection.iterdump())
        finally:
            connection.close()

    return dump


def postgres_dump() -> str:
    """Every row of every table of the test database, as text."""
    from django.db import connection

    rows = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f'SELECT t::text FROM "{table}" t')
            rows += [row[0] for row in cursor.fetchall()]
    return "\n".join(rows)


# --- Processes ------------------------------------------------------------------------


def pids_from(text: str) -> list[int]:
    """The pids a test tool printed (``pid N`` or ``pids N M``)."""
    match = re.search(r"pids? ([\d ]+)", text)
    assert match, f"no pids in {text!r}"
    return [int(pid) for pid in match[1].split()]


def stream_text(messages: list[dict]) -> str:
    """The deltas after the last ``retrying``, joined (docs/protocol.md)."""
    text: list[str] = []
    for message in messages:
        if message["type"] == "execution.status" and message["status"] == "retrying":
            text = []
        elif message["type"] == "execution.delta":
            text.append(message["text"])
    return "".join(text)


def within_json(text: str, cap: int) -> str:
    """The longest start of ``text`` that takes at most ``cap`` bytes inside a JSON string (the output cap's
    count), added up a character at a time: the same rule as the service's, written independently."""
    size = 0
    for index, character in enumerate(text):
        size += len(json.dumps(character)) - 2
        if size > cap:
            return text[:index]
    return text


def open_fifo(path: Path, timeout_s: float = 30) -> int:
    """Open a FIFO for writing once its reader (the tool) has it open; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:  # ENXIO: no reader yet
            if time.monotonic() > deadline:
                raise TimeoutError(f"nobody opened {path} for reading") from exc
            time.sleep(0.01)


def write_line(fifo: Path, line: str) -> None:
    descriptor = open_fifo(fifo)
    try:
        os.write(descriptor, (line + "\n").encode())
    finally:
        os.close(descriptor)


def structured(result) -> dict:
    """An MCP result's structured content, checked as a client of another process can: an error's
    text starts with its code; a success's text block is one of its strings (the streamed field).
    (tests.mcp.helpers.structured also checks the tool's row, in this process's database.)"""
    assert result.content[0].type == "text"
    content = result.structured_content
    if result.is_error:
        assert result.content[0].text.startswith(content["error"]["code"] + ":")
    else:
        assert result.content[0].text in [value for value in content.values() if isinstance(value, str)]
    return content
