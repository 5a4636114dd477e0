"""Fixtures for the tools' end-to-end tests: the service in both topologies, with the test tools.

``service`` is parametrized: ``[embedded]`` runs in the default pass,
``[production]`` (marked ``production``) in ``-m production``; a test
written once runs in both. ``tools_synced`` is for tests that use the test
process's own engine and database (the embedded default in-process).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcp_tools.tools.registry import sync_tools
from tests.e2e.helpers import embedded_serve
from tests.stack import ROOT
from tests.tools.fixture import GANTZ_FIXTURE, TOOL_APP, tool_env
from tests.tools.http_target import running_target
from tests.tools.service import (
    CREATE_USERS_COMMAND,
    Service,
    create_users,
    postgres_dump,
    sqlite_dump,
    tokens_from_output,
)
from tests.web.conftest import ui  # noqa: F401  (the browser fixture: the page's tool list)

# The embedded server's own secrets, set in its environment so a test can look for them in a tool's.
EMBEDDED_SECRETS = {
    "SECRET_KEY": "embedded-secret-key-for-tools-tests",
    "ANTHROPIC_API_KEY": "sk-ant-embedded-tools-tests",
}
# Per-user limit of the embedded server (the production stack's is lifted for load tests; its limit
# test runs a daphne of its own).
EMBEDDED_MAX_CONCURRENT = 3


@pytest.fixture(scope="session")
def tool_http_target() -> Iterator[str]:
    with running_target() as url:
        yield url


@pytest.fixture(scope="session")
def embedded_service(tmp_path_factory, tool_http_target) -> Iterator[Service]:
    data_dir = tmp_path_factory.mktemp("tools-embedded")
    database = data_dir / "db.sqlite3"
    settings = {
        **tool_env(tool_http_target),
        **EMBEDDED_SECRETS,
        "DATABASE_URL": f"sqlite:///{database}",
        "LLM_PROVIDER": "offline",
        "OFFLINE_DELAY_S": "0.001",
        "MCP_MAX_CONCURRENT_EXECUTIONS": str(EMBEDDED_MAX_CONCURRENT),
    }
    with embedded_serve(data_dir, **settings) as server:
        made = server_manage(server.env, "shell", "-c", CREATE_USERS_COMMAND)
        yield Service(
            topology="embedded",
            http_url=server.http_url,
            ws_url=server.ws_url,
            env=server.env,
            tokens=tokens_from_output(made),
            dump_database=sqlite_dump(database),
        )


def server_manage(env: dict[str, str], *args: str) -> str:
    process = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert process.returncode == 0, process.stdout + process.stderr
    return process.stdout


@pytest.fixture
def test_tools_installed(settings) -> None:
    """This process loads the test Gantz file and the test app, as the servers do."""
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, TOOL_APP]
    settings.GANTZ_CONFIG = GANTZ_FIXTURE


@pytest.fixture
def production_service(stack, test_tools_installed) -> Service:
    sync_tools()
    return Service(
        topology="production",
        http_url=stack.http_url,
        ws_url=stack.ws_url,
        env=stack.env,
        tokens=create_users(),
        dump_database=postgres_dump,
    )


PRODUCTION_MARKS = [pytest.mark.production, pytest.mark.django_db(transaction=True)]


@pytest.fixture(params=[pytest.param("embedded"), pytest.param("production", marks=PRODUCTION_MARKS)])
def service(request) -> Service:
    """The service with the test tools, in the topology of the test's parameter."""
    return request.getfixturevalue(f"{request.param}_service")


@pytest.fixture
def tools_synced(db, test_tools_installed, monkeypatch, tool_http_target) -> None:
    """The test tools as ``Tool`` rows of this process's database, their ${VAR}s in its environment."""
    for name, value in tool_env(tool_http_target).items():
        monkeypatch.setenv(name, value)
    sync_tools()


@pytest.fixture
def fifo(tmp_path) -> Path:
    """A named pipe a gated tool reads a line from (``service.write_line`` writes it)."""
    path = tmp_path / "gate"
    os.mkfifo(path)
    return path
