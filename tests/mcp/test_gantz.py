"""gantz.yaml stays valid for Gantz: each tool's exact command line, run the way
Gantz runs it, prints the tool's result.

What Gantz does with a tool (https://gantz.run): it substitutes ``{{name}}``
in the script's ``args`` with the call's arguments, sets ``GANTZ_ARG_<NAME>``
for each of them, runs ``command args...`` in the project directory, takes
stdout and stderr together as the tool's result, treats a non-zero exit as
an error, and kills the script after its ``timeout``. ``command`` is
``python``: found on PATH, which here starts with this venv's ``bin``.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.e2e.helpers import page_server
from tests.mcp.helpers import ROOT, embedded_env, prepare_embedded_project, python_on_path


@pytest.fixture(scope="module")
def gantz_env(tmp_path_factory) -> dict[str, str]:
    env = embedded_env(tmp_path_factory.mktemp("gantz"), MCP_ALLOW_PRIVATE_URLS="true")
    prepare_embedded_project(env)
    return env


def gantz_tools() -> dict[str, dict]:
    config = yaml.safe_load((ROOT / "gantz.yaml").read_text())
    return {tool["name"]: tool for tool in config["tools"]}


def timeout_seconds(value: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(ms|s|m|h)?", str(value).strip()).groups()
    return int(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit or "s"]


def gantz_call(tool: dict, arguments: dict, env: dict[str, str]) -> tuple[int, str]:
    """Run ``tool`` as Gantz does; returns (exit code, stdout+stderr)."""
    as_text = {name: value if isinstance(value, str) else json.dumps(value) for name, value in arguments.items()}
    script = tool["script"]
    args = [re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: as_text.get(m[1], ""), arg) for arg in script.get("args", [])]
    call_env = {**env, **{f"GANTZ_ARG_{name.upper()}": value for name, value in as_text.items()}}
    process = subprocess.run(
        [python_on_path(call_env, script["command"]), *args],
        cwd=ROOT,
        env=call_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout_seconds(script.get("timeout", "30s")),
    )
    return process.returncode, process.stdout


def test_gantz_yaml_declares_every_parameter_of_each_tool_and_a_python_command():
    tools = gantz_tools()
    assert set(tools) == {"generate_report", "summarize_content", "my_usage", "service_health"}
    assert [p["name"] for p in tools["generate_report"]["parameters"]] == ["data"]
    assert [p["name"] for p in tools["summarize_content"]["parameters"]] == ["url"]
    for name in ("generate_report", "summarize_content", "my_usage"):
        script = tools[name]["script"]
        assert script["command"] == "python" and script["args"][:2] == ["manage.py", "run_tool"]
    assert tools["service_health"]["http"]["url"] == "${SERVICE_URL}/health/"  # an http tool: no run_tool


def test_generate_report_command_line_prints_the_report_json(gantz_env):
    code, output = gantz_call(gantz_tools()["generate_report"], {"data": {"visitors": [120, 95, 143]}}, gantz_env)
    assert code == 0, output
    result = json.loads(output)  # stdout and stderr together are exactly the result
    assert result["model"] == "offline" and "visitors" in result["report"]
    assert set(result) >= {"report", "generated_at", "usage"}


def test_summarize_content_command_line_prints_the_summary_json(gantz_env):
    with page_server() as url:
        code, output = gantz_call(gantz_tools()["summarize_content"], {"url": url}, gantz_env)
    assert code == 0, output
    result = json.loads(output)
    assert result["url"] == url and "tide" in result["summary"].lower()


def test_a_failing_call_exits_non_zero_with_one_error_line(gantz_env):
    code, output = gantz_call(gantz_tools()["summarize_content"], {"url": "not a url"}, gantz_env)
    assert code != 0
    assert len(output.strip().splitlines()) == 1 and output.startswith("error: ")


def test_each_gantz_call_is_recorded_as_an_execution(gantz_env):
    before = _count_executions(gantz_env)
    code, output = gantz_call(gantz_tools()["generate_report"], {"data": {"n": 1}}, gantz_env)
    assert code == 0, output
    with sqlite3.connect(Path(gantz_env["DATA_DIR"]) / "db.sqlite3") as db:
        latest = db.execute(
            "SELECT u.username, e.status FROM mcp_tools_toolexecution e JOIN auth_user u "
            "ON u.id = e.user_id ORDER BY e.created_at DESC LIMIT 1"
        ).fetchone()
    assert _count_executions(gantz_env) == before + 1
    assert latest == ("gantz", "completed")


def _count_executions(env: dict[str, str]) -> int:
    with sqlite3.connect(Path(env["DATA_DIR"]) / "db.sqlite3") as db:
        return db.execute("SELECT count(*) FROM mcp_tools_toolexecution").fetchone()[0]


def test_a_call_past_the_gantz_timeout_ends_its_execution_before_gantz_kills_it(tmp_path):
    gantz_yaml = tmp_path / "gantz.yaml"
    config = yaml.safe_load((ROOT / "gantz.yaml").read_text())
    config["tools"] = [
        {**tool, "script": {**tool["script"], "timeout": "20s"}} if "script" in tool else tool
        for tool in config["tools"]
    ]
    gantz_yaml.write_text(yaml.safe_dump(config))
    # The offline report streams a piece every 2s: far longer than the 20s Gantz allows.
    env = embedded_env(tmp_path / "data", GANTZ_CONFIG=str(gantz_yaml), OFFLINE_DELAY_S="2")
    prepare_embedded_project(env)
    tool = yaml.safe_load(gantz_yaml.read_text())["tools"][1]
    assert tool["name"] == "generate_report"

    code, output = gantz_call(tool, {"data": {"k": 1}}, env)  # raises TimeoutExpired if Gantz had to kill it

    assert code != 0 and output.startswith("error: timeout: ") and len(output.strip().splitlines()) == 1
    with sqlite3.connect(Path(env["DATA_DIR"]) / "db.sqlite3") as db:
        statuses = db.execute("SELECT status FROM mcp_tools_toolexecution").fetchall()
        cancelled = db.execute(
            "SELECT s.cancelled_executions FROM mcp_tools_toolusagestats s JOIN mcp_tools_tool t "
            "ON t.id = s.tool_id WHERE t.name = 'generate_report'"
        ).fetchone()
    assert statuses == [("cancelled",)] and cancelled == (1,)
