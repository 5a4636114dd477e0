"""shell mode: a parameter value is never read as shell syntax.

Each case runs a real /bin/sh through run_script and checks that the value is
printed exactly as given and that nothing it spells out was executed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mcp_tools.gantz import GantzFileError, run_script
from mcp_tools.gantz.shell import render_shell

HOSTILE = [
    'x"; touch /tmp/p; echo "',
    "$(touch pwned)",
    "`touch pwned`",
    "'; touch pwned; echo '",
    "it's",
    '"',
    "\\",
    '\\"',
    "line one\nline two\n; touch pwned",
    "*",
    "?",
    "[a-z]*",
    "~",
    "${HOME}",
    "$HOME",
    "-n",
    "--version",
    "a  b\tc",
    "",
    "é 🙂",
    "x'\"$(touch pwned)`touch pwned`\"'y",
]
# (script, what it prints for a value v)
CONTEXTS = [
    ("printf '%s' {{v}}", lambda v: v),
    ("printf '%s' \"Hi {{v}}!\"", lambda v: f"Hi {v}!"),
    ("printf '%s' 'Hi {{v}}!'", lambda v: f"Hi {v}!"),
    ("printf '%s' \"$(printf '%s' {{v}})\"", lambda v: v.rstrip("\n")),
    ("printf '%s' \"${UNSET_VAR:-{{v}}}\"", lambda v: v),
    ("cat <<EOF\nHi {{v}}!\nEOF", lambda v: f"Hi {v}!\n"),
    ("# it's a comment with {{v}}\nprintf '%s' \"{{v}}\"", lambda v: v),
]


def tool_with(gantz_tool, shell: str):
    return gantz_tool(f"""
        tools:
          - name: echo
            parameters: [{{name: v, type: string}}]
            script:
              shell: |
{_indent(shell, 16)}
        """)


def _indent(text: str, spaces: int) -> str:
    return "\n".join(" " * spaces + line for line in text.splitlines())


@pytest.fixture
def tmp_p_untouched():
    """/tmp/p, the issue's marker file: it must not appear (or change) because of a run."""
    marker = Path("/tmp/p")
    before = marker.stat().st_mtime_ns if marker.exists() else None
    yield
    after = marker.stat().st_mtime_ns if marker.exists() else None
    assert after == before, "/tmp/p was touched by a tool run"


async def test_the_issues_injection_prints_its_value_and_touches_nothing(gantz_tool, emit, tmp_p_untouched):
    tool = tool_with(gantz_tool, 'echo "Hi {{v}}"')
    value = 'x"; touch /tmp/p; echo "'

    result = await run_script(tool, {"v": value}, emit=emit, environ=os.environ)

    assert result == {"output": f"Hi {value}\n", "exit_code": 0}


@pytest.mark.parametrize(("script", "expected"), CONTEXTS)
async def test_hostile_values_are_printed_verbatim_in_every_quoting_context(
    gantz_tool, tmp_path, tmp_p_untouched, script, expected
):
    tool = tool_with(gantz_tool, script)
    for value in HOSTILE:
        printed: list[str] = []

        result = await run_script(
            tool, {"v": value}, emit=printed.append, environ={"PATH": os.environ["PATH"], "HOME": "/nonexistent"}
        )

        assert result == {"output": expected(value), "exit_code": 0}, (script, value)
        assert "".join(printed) == result["output"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["gantz.yaml"]


async def test_non_string_values_are_substituted_as_json(gantz_tool, emit):
    tool = gantz_tool("""
        tools:
          - name: show
            parameters: [{name: data, type: object}, {name: n, type: number}, {name: ok, type: boolean}]
            script: {shell: 'printf "%s|%s|%s" "{{data}}" {{n}} {{ok}}'}
        """)

    result = await run_script(tool, {"data": {"a": [1, "$(x)"]}, "n": 1.5, "ok": False}, emit=emit, environ=os.environ)

    assert result["output"] == '{"a":[1,"$(x)"]}|1.5|false'


async def test_service_variables_expand_and_shell_variables_are_left_for_the_shell(gantz_tool, emit):
    tool = gantz_tool("""
        tools:
          - name: vars
            parameters: [{name: v}]
            environment: {OWN: mine}
            script:
              shell: 'set -- one; for f in a b; do printf "$f"; done; printf " $1 ${GREETING} $OWN $GANTZ_ARG_V ${NOT_SET_ANYWHERE:-dflt}"'
        """)  # noqa: E501 (the shell line above is one line of the tool file)

    result = await run_script(tool, {"v": "val"}, emit=emit, environ={"PATH": os.environ["PATH"], "GREETING": "hello"})

    assert result["output"] == "ab one hello mine val dflt"


@pytest.mark.parametrize(
    "script",
    [
        "echo $(( {{v}} + 1 ))",
        "(( {{v}} > 1 )) && echo big",
        "[[ {{v}} -eq 1 ]] && echo one",
        "echo \\{{v}}",
        "cat <<'EOF'\n{{v}}\nEOF",
        'cat <<"EOF"\n{{v}}\nEOF',
    ],
)
def test_places_where_a_value_would_be_evaluated_are_refused_when_loading(gantz_tool, script):
    with pytest.raises(GantzFileError) as caught:
        tool_with(gantz_tool, script)

    (problem,) = caught.value.problems
    assert (problem.tool, problem.field) == ("echo", "script.shell")


def test_the_script_holds_references_never_values():
    script = render_shell("echo {{v}} \"{{v}}\" '{{v}}'", {"v": "$(id)"}, {})

    assert "$(id)" not in script
    assert script == 'echo "${GANTZ_ARG_V-}" "${GANTZ_ARG_V-}" \'\'"${GANTZ_ARG_V-}"\'\''
