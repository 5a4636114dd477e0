"""Parameters are data, the child's environment is explicit, ``${VAR}`` values are never stored or shown.

Through the whole service, in both topologies (``conftest.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from tests.api.conftest import parse_sse
from tests.mcp.helpers import http_session
from tests.tools.fixture import GREETING, TOKEN
from tests.tools.service import stream_text, structured

# The issue's attempt, verbatim: it would touch /tmp/p if the value were shell syntax.
ISSUE_ATTEMPT = 'x"; touch /tmp/p; echo "'
# Others, each trying to create {marker} a different way.
ATTEMPTS = [
    'x"; touch {marker}; echo "',
    "$(touch {marker})",
    "`touch {marker}`",
    "'; touch {marker}; '",
    "a\ntouch {marker}",
    "&& touch {marker}",
    "| touch {marker} #",
    "${{IFS}}touch${{IFS}}{marker}",
    '"$(touch {marker})"',
    "*",
    "-n --help",
]
SERVICE_SECRETS = ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "ANTHROPIC_API_KEY")


def result_of(messages: list[dict]) -> dict:
    assert messages[-1]["type"] == "execution.completed", messages[-1]
    return messages[-1]["result"]


def file_state(path: Path) -> float | None:
    return path.stat().st_mtime_ns if path.exists() else None


@pytest.mark.parametrize("template", [ISSUE_ATTEMPT, *ATTEMPTS])
def test_an_injection_attempt_is_printed_verbatim_and_runs_nothing(service, tmp_path, template):
    marker = tmp_path / "touched"
    value = template.format(marker=marker) if template != ISSUE_ATTEMPT else template
    issue_file_before = file_state(Path("/tmp/p"))

    shell = result_of(service.execute_ws("alice", "shell_greet", {"name": value}))
    contexts = result_of(service.execute_ws("alice", "shell_contexts", {"value": value}))
    args = result_of(service.execute_ws("alice", "greet", {"name": value, "greeting": value}))

    assert shell == {"output": f"Hi {value}\n", "exit_code": 0}
    assert contexts["output"] == f"{value}\nv={value}\nq={value}\nh={value}\n"
    assert args["output"] == f"{value}, {value}! (1)\n"
    assert not marker.exists()
    assert file_state(Path("/tmp/p")) == issue_file_before  # not created, not touched


def test_the_childs_environment_holds_none_of_the_services_secrets(service):
    output = result_of(service.execute_ws("alice", "show_env"))["output"]
    child = dict(line.split("=", 1) for line in output.splitlines())
    secrets = {name: service.env[name] for name in SERVICE_SECRETS if service.env.get(name)}
    expected = {"SECRET_KEY", "DATABASE_URL", "ANTHROPIC_API_KEY"} | (
        {"REDIS_URL"} if service.topology == "production" else set()
    )
    assert set(secrets) == expected  # the worker has them all...
    for name, value in secrets.items():  # ...the tool none of them, under any name
        assert name not in child and value not in child.values()
    assert child["GREETING"] == GREETING  # the tool's own environment, ${VAR} expanded
    assert set(child) <= {"PATH", "HOME", "LANG", "GREETING", "PWD", "SHLVL", "OLDPWD", "_"}


def test_expanded_values_reach_the_tool_but_never_the_database_or_an_answer(service):
    """The token is in the server's environment and used by two tools; the database, every REST, SSE,
    WebSocket, MCP and admin answer, and run_tool's output are searched for it."""
    by_ws = service.execute_ws("alice", "token_length")
    assert result_of(by_ws)["output"] == f"{len(TOKEN)}\n"  # the script had the value
    by_http = service.execute_ws("alice", "http_secret")
    assert json.loads(result_of(by_http)["output"]) == {"authorized": True}  # the server got the value
    by_cli = service.run_tool("http_secret")
    assert json.loads(by_cli.stdout) == {"output": '{"authorized": true}', "status": 200}

    async def by_mcp():
        async with http_session(service.http_url + "/mcp", service.tokens["alice"]) as session:
            listed = await session.list_tools()
            called = await session.call_tool("token_length", {})
            return [tool.model_dump_json() for tool in listed.tools], structured(called)

    mcp_tools, mcp_result = anyio.run(by_mcp)
    assert mcp_result["output"] == f"{len(TOKEN)}\n"

    execution_ids = [by_ws[-1]["execution_id"], by_http[-1]["execution_id"]]
    with service.api("alice") as api:
        for path in ("/api/tools/", "/api/tools/token_length/", "/api/tools/http_secret/", "/api/executions/"):
            assert api.get(path).status_code == 200
        for execution_id in execution_ids:
            for suffix in ("", "status/"):
                api.get(f"/api/executions/{execution_id}/{suffix}")
            events, _ = parse_sse(api.get(f"/api/executions/{execution_id}/events/").text)
            assert stream_text([event["data"] for event in events]) in (f"{len(TOKEN)}\n", '{"authorized": true}')
    with service.admin() as admin:
        for tool in ("token_length", "http_secret"):
            admin.get("/admin/mcp_tools/tool/", params={"q": tool})
        for execution_id in execution_ids:
            admin.get(f"/admin/mcp_tools/toolexecution/{execution_id}/change/")
        for link in _tool_change_links(admin):
            admin.get(link)

    answers = service.answers + mcp_tools + [json.dumps(mcp_result), by_cli.stdout, by_cli.stderr]
    assert not [answer[:200] for answer in answers if TOKEN in answer]
    dump = service.dump_database()
    assert "${TEST_TOOL_TOKEN}" in dump  # the definitions are stored, as written
    assert TOKEN not in dump


def _tool_change_links(admin) -> list[str]:
    import re

    page = admin.get("/admin/mcp_tools/tool/").text
    return sorted(set(re.findall(r'href="(/admin/mcp_tools/tool/\d+/change/)', page)))
