"""load_gantz_file: gantz-cli's format and our keys, or every problem at once."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import jsonschema
import pytest

from mcp_tools.gantz import GantzFileError, Problem, is_service_secret, load_gantz_file

EXAMPLE = """\
name: my-tools
description: Tools of the team
version: "2.1.0"
server: {port: 3000}

tools:
  - name: list_files
    description: List files in a folder
    parameters:
      - name: path
        type: string
        description: The folder
        required: true
        default: "."
    environment:
      API_TOKEN: "${MY_TOKEN}"
    script:
      command: ls
      args: ["-la", "{{path}}"]
      working_dir: ./data
      timeout: 30s
  - name: head
    description: First lines
    parameters: [{name: path, type: string, required: true}]
    script:
      shell: 'ls -la "{{path}}" | head -20'
  - name: get_weather
    description: Weather for a city
    parameters: [{name: city, type: string, required: true}]
    http:
      method: POST
      url: "https://api.example.com/weather?city={{city}}"
      headers: {Authorization: "Bearer ${WEATHER_KEY}"}
      body: '{"q": "{{city}}"}'
      timeout: 10s
      extract_json: "data.current.temp"
"""


def write(folder: Path, text: str) -> Path:
    path = folder / "gantz.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def problems_of(folder: Path, text: str) -> list[Problem]:
    with pytest.raises(GantzFileError) as caught:
        load_gantz_file(write(folder, text))
    assert str(caught.value) == "\n".join(str(problem) for problem in caught.value.problems)
    return caught.value.problems


def test_the_gantz_example_loads_with_every_field(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_TOKEN", "token-from-the-environment")
    (tmp_path / "data").mkdir()

    gantz = load_gantz_file(write(tmp_path, EXAMPLE))

    assert (gantz.name, gantz.description, gantz.version) == ("my-tools", "Tools of the team", "2.1.0")
    assert gantz.path == tmp_path / "gantz.yaml"
    list_files, head, weather = gantz.tools
    assert list_files.parameters[0].name == "path"
    assert (list_files.parameters[0].required, list_files.parameters[0].default) == (True, ".")
    assert list_files.environment == {"API_TOKEN": "${MY_TOKEN}"}
    script = list_files.script
    assert (script.command, script.args, script.shell) == ("ls", ("-la", "{{path}}"), "")
    assert (script.working_dir, list_files.timeout_s()) == (tmp_path / "data", 30.0)
    assert (head.script.shell, head.script.working_dir, head.timeout_s()) == (
        'ls -la "{{path}}" | head -20',
        tmp_path,
        None,
    )
    http = weather.http
    assert (http.method, http.url, http.body, http.timeout_s, http.extract_json) == (
        "POST",
        "https://api.example.com/weather?city={{city}}",
        '{"q": "{{city}}"}',
        10.0,
        "data.current.temp",
    )
    assert http.headers == {"Authorization": "Bearer ${WEATHER_KEY}"}
    assert (list_files.kind, weather.kind, weather.script, list_files.http) == ("script", "http", None, None)


def test_the_definition_keeps_environment_references_unexpanded(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_TOKEN", "token-from-the-environment")
    monkeypatch.setenv("WEATHER_KEY", "key-from-the-environment")
    (tmp_path / "data").mkdir()

    tools = load_gantz_file(write(tmp_path, EXAMPLE)).tools

    stored = json.dumps([tool.raw for tool in tools])
    assert "from-the-environment" not in stored + repr(tools)
    assert tools[0].raw["environment"] == {"API_TOKEN": "${MY_TOKEN}"}
    assert tools[2].raw["http"]["headers"] == {"Authorization": "Bearer ${WEATHER_KEY}"}


def test_file_defaults_are_gantz_defaults(tmp_path):
    gantz = load_gantz_file(write(tmp_path, "tools: []\n"))

    assert (gantz.name, gantz.version, gantz.description, gantz.tools) == ("gantz-local", "1.0.0", "", [])


def test_defaults_written_as_strings_are_converted_to_the_parameter_type(tmp_path):
    gantz = load_gantz_file(
        write(
            tmp_path,
            """
        tools:
          - name: typed
            parameters:
              - {name: count, type: integer, default: "5"}
              - {name: ratio, type: number, default: "1.5"}
              - {name: whole, type: number, default: "2"}
              - {name: loud, type: boolean, default: "true"}
              - {name: quiet, type: bool, default: "F"}
              - {name: options, type: object, default: '{"a": [1]}'}
              - {name: items, type: array, default: '[1, "x"]'}
              - {name: label, type: str, default: 7}
              - {name: unquoted, type: int, default: 9}
              - {name: none, type: float, default: ""}
              - {name: plain}
            script: {command: "true"}
        """,
        )
    )

    (tool,) = gantz.tools
    defaults = {p.name: p.default for p in tool.parameters}
    assert defaults == {
        "count": 5,
        "ratio": 1.5,
        "whole": 2,
        "loud": True,
        "quiet": False,
        "options": {"a": [1]},
        "items": [1, "x"],
        "label": "7",
        "unquoted": 9,
        "none": None,
        "plain": None,
    }
    types = {p.name: p.type for p in tool.parameters}
    assert types == {
        "count": "integer",
        "ratio": "number",
        "whole": "number",
        "loud": "boolean",
        "quiet": "boolean",
        "options": "object",
        "items": "array",
        "label": "string",
        "unquoted": "integer",
        "none": "number",
        "plain": "string",
    }
    assert tool.arguments({"count": 1}) == {**{k: v for k, v in defaults.items() if v is not None}, "count": 1}


def test_parameters_schema_is_a_closed_2020_12_schema(gantz_tool):
    tool = gantz_tool("""
        tools:
          - name: greet
            description: Say hello
            parameters:
              - {name: name, type: string, required: true, description: Who}
              - {name: times, type: integer, default: "2"}
            script: {shell: 'echo "{{name}}"'}
        """)

    schema = tool.parameters_schema()

    assert schema == {
        "type": "object",
        "properties": {"name": {"type": "string", "description": "Who"}, "times": {"type": "integer", "default": 2}},
        "required": ["name"],
        "additionalProperties": False,
    }
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid({"name": "Ada", "times": 3})
    assert not validator.is_valid({"name": "Ada", "extra": 1})
    assert not validator.is_valid({"times": 3})


def test_output_schema_says_exit_code_for_scripts_and_status_for_http(gantz_tool):
    script = gantz_tool("tools: [{name: s, script: {command: 'true'}}]")
    http = gantz_tool("tools: [{name: h, http: {url: 'https://example.com/'}}]")

    assert script.output_schema()["properties"] == {"output": {"type": "string"}, "exit_code": {"type": "integer"}}
    assert http.output_schema()["required"] == ["output", "status"]
    for tool in (script, http):
        jsonschema.Draft202012Validator.check_schema(tool.output_schema())


def test_our_extension_keys_pure_repeatable_and_access(gantz_tool):
    tool = gantz_tool(
        """
        tools:
          - name: guarded
            pure: true
            repeatable: false
            access: {groups: [ops, admins], permission: mcp_tools.use_guarded}
            script: {command: "true"}
          - name: plain
            script: {command: "true"}
        """,
        name="guarded",
    )
    plain = gantz_tool("tools: [{name: plain, script: {command: 'true'}}]")

    assert (tool.pure, tool.repeatable) == (True, False)
    assert (tool.access_groups, tool.access_permission) == (("ops", "admins"), "mcp_tools.use_guarded")
    assert (plain.pure, plain.repeatable, plain.access_groups, plain.access_permission) == (False, True, (), "")


def test_allow_private_is_read_for_http_tools_whose_host_the_file_fixes(gantz_tool):
    fixed = gantz_tool("""
        tools:
          - name: health
            allow_private: true
            http: {url: "http://127.0.0.1:8000/health/?q={{q}}"}
            parameters: [{name: q, type: string}]
        """)
    from_environment = gantz_tool("""
        tools:
          - name: health
            allow_private: true
            http: {url: "${SERVICE_URL}/health/{{part}}"}
            parameters: [{name: part, type: string}]
        """)
    assert fixed.allow_private and from_environment.allow_private
    assert not gantz_tool("tools: [{name: t, http: {url: 'http://127.0.0.1/'}}]").allow_private


@pytest.mark.parametrize(
    "url", ["http://{{host}}/", "http://127.0.0.1:{{port}}/x", "http://{{host}}.internal/", "${BASE}{{rest}}"]
)
def test_allow_private_is_refused_when_a_parameter_fills_the_host(tmp_path, url):
    problems = problems_of(
        tmp_path,
        f"""
        tools:
          - name: open_door
            allow_private: true
            parameters: [{{name: host, type: string}}, {{name: port, type: string}}, {{name: rest, type: string}}]
            http: {{url: "{url}"}}
        """,
    )
    assert [(p.tool, p.field) for p in problems] == [("open_door", "allow_private")]
    assert "a caller could then choose any private address" in problems[0].message


def test_allow_private_is_for_http_tools_only(tmp_path):
    problems = problems_of(
        tmp_path,
        """
        tools:
          - name: script_tool
            allow_private: true
            script: {command: "true"}
        """,
    )
    assert [(p.tool, p.field, p.message) for p in problems] == [
        ("script_tool", "allow_private", "applies to http tools only")
    ]


def test_yaml_1_1_words_and_dates_stay_the_strings_gantz_reads(gantz_tool):
    tool = gantz_tool("tools: [{name: t, script: {command: echo, args: [on, no, 2026-01-31, 1.50]}}]")

    assert tool.script.args == ("on", "no", "2026-01-31", "1.5")
    json.dumps(tool.raw)  # storable as written


def test_braces_that_are_not_a_placeholder_are_left_alone(gantz_tool):
    tool = gantz_tool("""
        tools:
          - name: state
            parameters: [{name: id}]
            script: {command: docker, args: [inspect, -f, "{{.State.Status}}", "{{ id }}", "{{id}}"]}
        """)

    assert tool.script.args[2:] == ("{{.State.Status}}", "{{ id }}", "{{id}}")


def test_a_broken_file_is_refused_whole_with_every_problem_named(tmp_path, monkeypatch):
    monkeypatch.setenv("DB_PASSWORD", "hunter2")
    problems = problems_of(
        tmp_path,
        """
        name: broken
        tools:
          - name: ok_tool
            script: {command: "true"}
          - name: twice
            script: {command: "true"}
          - name: twice
            script: {command: "true"}
          - description: no name
            script: {command: "true"}
          - name: nothing
          - name: both
            script: {command: "true"}
            http: {url: "https://example.com/"}
          - name: command_and_shell
            script: {command: ls, shell: ls}
          - name: neither_command_nor_shell
            script: {timeout: 5s}
          - name: bad_types
            parameters:
              - {name: a, type: text}
              - {name: b, type: integer, default: "x1"}
              - {name: bad-name}
              - {name: dup}
              - {name: DUP}
            script:
              command: ls
              args: ["{{missing}}", {not: a string}, "${SECRET_KEY}"]
              timout: 5s
              timeout: 30x
              working_dir: ./no_such_folder
          - name: shellish
            parameters: [{name: n, type: integer}]
            environment: {A: "${DATABASE_URL}", B: "{{n}}", C: "$DB_PASSWORD"}
            script:
              shell: 'echo $(( {{n}} + 1 )) {{other}}; echo ${AWS_SECRET_ACCESS_KEY}'
              working_dir: ${HOME}
          - name: cmd_placeholder
            parameters: [{name: n}]
            script: {command: "{{n}}"}
          - name: web
            parameters: [{name: q}]
            pure: maybe
            access: {groups: [""], permission: nodot, extra: 1}
            http:
              method: FETCH
              url: "ftp://example.com/{{q}}?x={{nope}}"
              headers: {"Bad Header": x, X-Key: "${REDIS_URL}", X-Q: "{{q2}}"}
              body: '{"q": "{{q3}}"}'
              extract_json: "items[x].name"
              timeout: soon
          - name: no_url
            http: {method: GET}
          - name: scheme_param
            parameters: [{name: proto}]
            http: {url: "{{proto}}://example.com/"}
        """,
    )

    found = {(problem.tool, problem.field) for problem in problems}
    expected = {
        ("twice", "name"),
        (None, "tools[3].name"),
        ("nothing", "script/http"),
        ("both", "script/http"),
        ("command_and_shell", "script"),
        ("neither_command_nor_shell", "script"),
        ("bad_types", "parameters.a.type"),
        ("bad_types", "parameters.b.default"),
        ("bad_types", "parameters.bad-name.name"),
        ("bad_types", "parameters.DUP.name"),
        ("bad_types", "script.args[0]"),
        ("bad_types", "script.args[1]"),
        ("bad_types", "script.args[2]"),
        ("bad_types", "script.timout"),
        ("bad_types", "script.timeout"),
        ("bad_types", "script.working_dir"),
        ("shellish", "environment.A"),
        ("shellish", "environment.B"),
        ("shellish", "environment.C"),
        ("shellish", "script.shell"),
        ("shellish", "script.working_dir"),
        ("cmd_placeholder", "script.command"),
        ("web", "pure"),
        ("web", "access.groups[0]"),
        ("web", "access.permission"),
        ("web", "access.extra"),
        ("web", "http.method"),
        ("web", "http.url"),
        ("web", "http.headers.Bad Header"),
        ("web", "http.headers.X-Key"),
        ("web", "http.headers.X-Q"),
        ("web", "http.body"),
        ("web", "http.extract_json"),
        ("web", "http.timeout"),
        ("no_url", "http.url"),
        ("scheme_param", "http.url"),
    }
    assert expected <= found, expected - found
    assert not {tool for tool, _field in found} & {"ok_tool"}
    shell_messages = [p.message for p in problems if (p.tool, p.field) == ("shellish", "script.shell")]
    assert any("{{other}}" in message for message in shell_messages)
    assert any("$((" in message for message in shell_messages)
    assert any("AWS_SECRET_ACCESS_KEY" in message for message in shell_messages)
    url_messages = [p.message for p in problems if (p.tool, p.field) == ("web", "http.url")]
    assert any("{{nope}}" in message for message in url_messages)
    assert any("ftp://" in message for message in url_messages)
    timeout = next(p for p in problems if p.field == "script.timeout")
    assert timeout == Problem("bad_types", "script.timeout", "'30x' is not a duration like 30s, 1m30s, 500ms")
    assert "hunter2" not in "\n".join(map(str, problems))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tools: [\n  - name: x\n  bad", "is not valid YAML"),
        ("- just\n- a list\n", "must be a mapping"),
        ("tools:\n  - name: a\n    name: b\n    script: {command: 'true'}\n", "written twice"),
        ("tools: [{name: a, script: {command: 'true', args: [!!binary aGk=]}}]", "not supported"),
        ("tool: []\n", "unknown key"),
    ],
)
def test_a_file_that_is_not_a_gantz_mapping_is_one_problem(tmp_path, text, message):
    problems = problems_of(tmp_path, text)

    assert any(message in problem.message for problem in problems), problems


def test_a_missing_file_is_a_problem_not_a_crash(tmp_path):
    with pytest.raises(GantzFileError) as caught:
        load_gantz_file(tmp_path / "absent.yaml")

    assert "cannot be read" in str(caught.value)


def test_working_dir_is_read_from_the_files_folder_and_may_leave_it(tmp_path):
    (tmp_path / "tools" / "bin").mkdir(parents=True)
    (tmp_path / "shared").mkdir()
    path = tmp_path / "tools" / "gantz.yaml"
    path.write_text(
        textwrap.dedent("""
        tools:
          - {name: inside, script: {command: ls, working_dir: bin}}
          - {name: outside, script: {command: ls, working_dir: ../shared}}
          - {name: absolute, script: {command: ls, working_dir: /}}
          - {name: default, script: {command: ls}}
        """)
    )

    dirs = {tool.name: tool.script.working_dir for tool in load_gantz_file(path).tools}

    assert dirs == {
        "inside": tmp_path / "tools" / "bin",
        "outside": tmp_path / "shared",
        "absolute": Path("/"),
        "default": tmp_path / "tools",
    }


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("SECRET_KEY", True),
        ("DATABASE_URL", True),
        ("REDIS_URL", True),
        ("CELERY_BROKER_URL", True),
        ("ANTHROPIC_API_KEY", True),
        ("EMAIL_HOST_PASSWORD", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("DJANGO_SECRET_KEY", True),
        ("WEATHER_KEY", False),
        ("HOME", False),
        ("GITHUB_TOKEN", False),
    ],
)
def test_the_service_secrets_are_one_list(name, secret):
    assert is_service_secret(name) is secret
