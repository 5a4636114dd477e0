"""run_script with real processes: argv, environment, streaming, results, failures."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from mcp_tools.errors import PermanentToolError
from mcp_tools.gantz import run_script

from .conftest import Recorder
from .pids import wait_until_gone

PYTHON = sys.executable
SECRETS = {
    "SECRET_KEY": "s3cret-key",
    "DATABASE_URL": "postgres://u:pw@db/x",
    "REDIS_URL": "redis://:pw@redis/0",
    "ANTHROPIC_API_KEY": "sk-ant-secret",
    "CELERY_BROKER_URL": "redis://:pw@redis/1",
    "EMAIL_HOST_PASSWORD": "pw",
}


def python_tool(
    gantz_tool, tmp_path: Path, code: str, *, parameters: str = "[]", args: tuple[str, ...] = (), extra: str = ""
) -> object:
    """A tool running ``code`` (a Python file next to the Gantz file) with ``args``."""
    (tmp_path / "tool.py").write_text(code)
    return gantz_tool(f"""
        tools:
          - name: py
            parameters: {parameters}
            {extra}
            script: {{command: {json.dumps(PYTHON)}, args: {json.dumps(["tool.py", *args])}}}
        """)


async def run(tool, parameters=None, *, emit=None, environ=None) -> dict:
    return await run_script(
        tool, parameters or {}, emit=emit or Recorder(), environ=os.environ if environ is None else environ
    )


# --- argv and environment ------------------------------------------------------------


async def test_each_value_is_exactly_one_argv_element(gantz_tool, tmp_path):
    tool = python_tool(
        gantz_tool,
        tmp_path,
        "import json, sys; print(json.dumps(sys.argv[1:]))",
        parameters="[{name: a}, {name: n, type: integer}, {name: o, type: object}, "
        "{name: d, default: dflt}, {name: absent}]",
        args=("x", "{{a}}", "--n={{n}}", "{{o}}", "{{d}}", "{{absent}}"),
    )

    result = await run(tool, {"a": "two words; $(id) `id` *\n", "n": 3, "o": {"k": [1]}})

    assert json.loads(result["output"]) == ["x", "two words; $(id) `id` *\n", "--n=3", '{"k":[1]}', "dflt", ""]
    assert result["exit_code"] == 0


async def test_parameters_reach_the_process_as_gantz_arg_variables(gantz_tool, tmp_path):
    tool = python_tool(
        gantz_tool,
        tmp_path,
        "import json, os; print(json.dumps({k: v for k, v in os.environ.items() if k.startswith('GANTZ_ARG_')}))",
        parameters="[{name: path}, {name: count, type: integer}, {name: flag, type: boolean},"
        " {name: items, type: array}, {name: fallback, default: here}, {name: absent}]",
    )

    result = await run(tool, {"path": "/tmp/x y", "count": 2, "flag": True, "items": ["a", 1]})

    assert json.loads(result["output"]) == {
        "GANTZ_ARG_PATH": "/tmp/x y",
        "GANTZ_ARG_COUNT": "2",
        "GANTZ_ARG_FLAG": "true",
        "GANTZ_ARG_ITEMS": '["a",1]',
        "GANTZ_ARG_FALLBACK": "here",
    }


async def test_the_child_gets_a_minimal_environment_without_the_services_secrets(gantz_tool, tmp_path, monkeypatch):
    for name, value in {**SECRETS, "MY_TOKEN": "tool-token", "LANG": "C.UTF-8"}.items():
        monkeypatch.setenv(name, value)
    tool = python_tool(
        gantz_tool,
        tmp_path,
        "import json, os; print(json.dumps(dict(os.environ)))",
        parameters="[{name: q}]",
        extra='environment: {TOKEN: "Bearer ${MY_TOKEN}"}',
    )

    result = await run(tool, {"q": "v"}, environ=os.environ)

    env = json.loads(result["output"])
    assert set(env) - {"PWD"} == {"PATH", "HOME", "LANG", "TOKEN", "GANTZ_ARG_Q"}
    assert (env["PATH"], env["HOME"], env["TOKEN"]) == (os.environ["PATH"], os.environ["HOME"], "Bearer tool-token")
    for secret in SECRETS.values():
        assert secret not in result["output"]


async def test_working_dir_defaults_to_the_files_folder_and_is_relative_to_it(gantz_tool, tmp_path):
    (tmp_path / "data").mkdir()
    default = gantz_tool("tools: [{name: here, script: {command: pwd}}]")
    relative = gantz_tool("tools: [{name: there, script: {shell: pwd, working_dir: data}}]")

    assert (await run(default))["output"] == f"{tmp_path}\n"
    assert (await run(relative))["output"] == f"{tmp_path / 'data'}\n"


async def test_command_is_looked_up_on_the_path_or_relative_to_the_working_dir(gantz_tool, tmp_path):
    (tmp_path / "bin").mkdir()
    script = tmp_path / "bin" / "hello"
    script.write_text("#!/bin/sh\necho hello from $0\n")
    script.chmod(0o755)
    relative = gantz_tool("tools: [{name: rel, script: {command: ./bin/hello}}]")
    via_env = gantz_tool("tools: [{name: env, script: {command: '${TOOLS}/hello'}}]")
    on_path = gantz_tool("tools: [{name: path, script: {command: hello}}]")

    assert (await run(relative))["output"] == f"hello from {script}\n"
    assert (await run(via_env, environ={"TOOLS": str(tmp_path / "bin")}))["exit_code"] == 0
    assert (await run(on_path, environ={"PATH": f"/usr/bin:{tmp_path / 'bin'}"}))["exit_code"] == 0


# --- streaming and the result ------------------------------------------------------


async def test_stdout_is_emitted_while_the_process_still_runs(gantz_tool, tmp_path):
    """The script prints a line, then blocks until the test opens its gate, which the
    test does only from ``emit`` once that line arrived: a run that emitted only at
    the end could never finish."""
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    tool = gantz_tool("""
        tools:
          - name: slow
            parameters: [{name: gate}]
            script: {shell: 'echo "first line"; read answer < "{{gate}}"; echo "then $answer"'}
        """)
    seen_before_gate: list[str] = []

    def on_piece(text: str) -> None:
        if "first line" in text and not seen_before_gate:
            seen_before_gate.append(text)
            with open(gate, "w") as opened:  # the script is waiting to read it
                opened.write("released\n")

    emit = Recorder(on_piece)
    async with asyncio.timeout(30):
        result = await run(tool, {"gate": str(gate)}, emit=emit)

    assert seen_before_gate == ["first line\n"]
    assert emit.pieces == ["first line\n", "then released\n"]
    assert result == {"output": "first line\nthen released\n", "exit_code": 0}


async def test_utf8_split_across_reads_is_never_split_into_broken_characters(gantz_tool, tmp_path):
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    tool = python_tool(
        gantz_tool,
        tmp_path,
        f"""
import sys
out = sys.stdout.buffer
out.write("a".encode() + "é".encode()[:1]); out.flush()
open({str(gate)!r}).read()
out.write("é".encode()[1:] + "b".encode()); out.flush()
""",
    )

    def on_piece(text: str) -> None:
        if text == "a":
            with open(gate, "w"):
                pass

    emit = Recorder(on_piece)
    async with asyncio.timeout(30):
        result = await run(tool, emit=emit)

    assert emit.pieces == ["a", "éb"]
    assert result["output"] == "aéb"


async def test_undecodable_bytes_become_replacement_characters(gantz_tool, tmp_path):
    tool = python_tool(gantz_tool, tmp_path, "import sys; sys.stdout.buffer.write(b'ok \\xff\\xfe end')")

    assert (await run(tool))["output"] == "ok \ufffd\ufffd end"


async def test_stderr_is_appended_after_stdout_with_a_newline_as_gantz_does(gantz_tool, emit):
    both = gantz_tool("tools: [{name: both, script: {shell: 'echo err >&2; echo out'}}]")
    only_err = gantz_tool("tools: [{name: err, script: {shell: 'printf warn >&2'}}]")

    result = await run(both, emit=emit)

    assert emit.pieces == ["out\n", "\nerr\n"]
    assert result == {"output": "out\n\nerr\n", "exit_code": 0}
    assert (await run(only_err))["output"] == "warn"


async def test_big_output_is_read_and_emitted_in_bounded_chunks(gantz_tool, tmp_path, emit):
    tool = python_tool(gantz_tool, tmp_path, "import sys; sys.stdout.write('x' * 3_000_000)")

    result = await run(tool, emit=emit)

    assert len(result["output"]) == 3_000_000
    assert len(emit.pieces) > 3 and max(map(len, emit.pieces)) <= 64 * 1024
    assert emit.text == result["output"]


async def test_stderr_kept_is_capped(gantz_tool, tmp_path, settings):
    settings.MCP_CONFIG = {**settings.MCP_CONFIG, "SCRIPT_STDERR_MAX_BYTES": 10}
    tool = python_tool(gantz_tool, tmp_path, "import sys; sys.stderr.write('e' * 100_000)")

    result = await run(tool)

    assert result["output"] == "e" * 10 + "\n[99990 more bytes of stderr not kept]"


async def test_leftover_background_processes_are_killed_when_the_tool_exits(gantz_tool, emit):
    tool = gantz_tool("tools: [{name: bg, script: {shell: 'sleep 300 & echo $!'}}]")

    async with asyncio.timeout(30):
        result = await run(tool, emit=emit)

    (pid,) = map(int, result["output"].split())
    wait_until_gone([pid])


# --- failures --------------------------------------------------------------------------


async def test_non_zero_exit_fails_with_the_code_after_emitting_everything(gantz_tool, emit):
    tool = gantz_tool("tools: [{name: fails, script: {shell: 'echo partial; echo oops >&2; exit 3'}}]")

    with pytest.raises(PermanentToolError) as caught:
        await run(tool, emit=emit)

    error = caught.value
    assert (error.code, error.message) == ("tool_failed", "Tool 'fails' exited with code 3.")
    assert error.result == {"output": "partial\n\noops\n", "exit_code": 3}
    assert emit.text == error.result["output"]


async def test_a_signal_ending_the_tool_is_named(gantz_tool):
    tool = gantz_tool("tools: [{name: killed, script: {shell: 'echo bye; kill -TERM $$'}}]")

    with pytest.raises(PermanentToolError) as caught:
        await run(tool)

    assert caught.value.message == "Tool 'killed' was killed by signal SIGTERM (15)."
    assert caught.value.result == {"output": "bye\n", "exit_code": -15}


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        ("no-such-command-here", "'no-such-command-here' was not found on the PATH"),
        ("./missing.sh", "'./missing.sh' was not found"),
        ("${TOOLS_DIR}/missing", "'${TOOLS_DIR}/missing' was not found"),
        ("./not-executable.sh", "'./not-executable.sh' is not executable"),
    ],
)
async def test_a_command_that_cannot_run_fails_readably(gantz_tool, tmp_path, command, reason):
    (tmp_path / "not-executable.sh").write_text("#!/bin/sh\necho hi\n")
    tool = gantz_tool(f"tools: [{{name: broken, script: {{command: '{command}'}}}}]")

    with pytest.raises(PermanentToolError) as caught:
        await run(tool, environ={"PATH": "/usr/bin:/bin", "TOOLS_DIR": "/opt/secret-location"})

    assert caught.value.code == "tool_failed"
    assert caught.value.message == f"Tool 'broken' cannot run: its command {reason}."
    assert "secret-location" not in caught.value.message


async def test_a_working_dir_removed_after_loading_fails_readably(gantz_tool, tmp_path):
    (tmp_path / "work").mkdir()
    tool = gantz_tool("tools: [{name: wd, script: {command: pwd, working_dir: work}}]")
    (tmp_path / "work").rmdir()

    with pytest.raises(PermanentToolError) as caught:
        await run(tool)

    assert caught.value.code == "tool_failed"
    assert "working directory" in caught.value.message
