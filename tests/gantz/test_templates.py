"""Placeholders and ${VAR}: a value is written as data where it lands, and
environment references expand as Go's os.ExpandEnv does, in the file's text only."""

from __future__ import annotations

import json

import pytest

from mcp_tools.errors import PermanentToolError
from mcp_tools.gantz.environment import child_environment, expand_env, referenced_names
from mcp_tools.gantz.templates import render_arg, render_body, render_header, render_url

ENV = {"HOST": "api.example.com", "TOKEN": "t0k", "EMPTY": ""}


@pytest.mark.parametrize(
    ("text", "expanded"),
    [
        ("${HOST}/x", "api.example.com/x"),
        ("$HOST/x", "api.example.com/x"),
        ("$HOSTX", ""),
        ("${HOST}X", "api.example.comX"),
        ("$UNSET-", "-"),
        ("a$", "a$"),
        ("$ a", "$ a"),
        ("${}", ""),
        ("${HOST", "HOST"),
        ("$1$?$$", ""),
        ("${1}", ""),
        ("cost: $5", "cost: "),
        ("${TOKEN:-x}", ""),
        ("%$%", "%$%"),
    ],
)
def test_environment_references_expand_as_go_does(text, expanded):
    assert expand_env(text, ENV) == expanded


def test_references_are_found_by_name_including_shell_forms():
    assert referenced_names("$A ${B} ${C:-d} $1 $") == {"A", "B", "C", "1"}


def test_a_value_is_one_argument_whatever_it_contains():
    arguments = {"path": "a b; rm -rf ~ $(id) ${TOKEN}", "n": 3, "opts": {"k": [1, True]}}

    assert render_arg("--path={{path}}", arguments, ENV) == "--path=a b; rm -rf ~ $(id) ${TOKEN}"
    assert render_arg("{{n}}", arguments, ENV) == "3"
    assert render_arg("{{opts}}", arguments, ENV) == '{"k":[1,true]}'
    assert render_arg("${TOKEN}:{{missing}}", arguments, ENV) == "t0k:"


def test_url_values_are_percent_encoded_so_they_cannot_restructure_it():
    arguments = {"city": "São Paulo/../admin?x=1&y=2#frag", "q": "a+b c"}

    url = render_url("https://${HOST}/w/{{city}}?q={{q}}&c={{city}}", arguments, ENV)

    encoded = "S%C3%A3o%20Paulo%2F..%2Fadmin%3Fx%3D1%26y%3D2%23frag"
    assert url == f"https://api.example.com/w/{encoded}?q=a%2Bb%20c&c={encoded}"


def test_header_values_are_substituted_but_a_line_break_is_refused():
    assert render_header("Authorization", "Bearer {{t}} ${TOKEN}", {"t": "abc"}, ENV) == "Bearer abc t0k"
    assert render_header("X-City", "{{c}}\t!", {"c": "São Paulo"}, ENV) == "São Paulo\t!"
    for value in ("x\r\nX-Admin: 1", "x\nY", "x\rY", "x\x00", "x\x1b[0m", "x\x7f"):
        with pytest.raises(PermanentToolError) as caught:
            render_header("X-Q", "{{q}}", {"q": value}, ENV)
        assert caught.value.code == "invalid_parameters"


@pytest.mark.parametrize(
    "value", ['x", "admin": true, "y": "', "back\\slash", "new\nline", "\u0000", "é 🙂", 42, None, {"nested": ["a"]}]
)
def test_a_json_body_stays_the_same_json_structure_whatever_the_value(value):
    arguments = {"q": value, "n": value}

    body = render_body('{"q": "{{q}}", "n": {{n}}, "fixed": "${TOKEN}"}', arguments, ENV, "application/json")

    document = json.loads(body)
    assert set(document) == {"q", "n", "fixed"}
    assert document["q"] == (value if isinstance(value, str) else json.dumps(value, separators=(",", ":")))
    assert (document["n"], document["fixed"]) == (value, "t0k")


def test_a_missing_value_is_empty_in_a_json_string_and_null_elsewhere():
    body = render_body('{"q": "{{q}}", "n": {{n}}}', {}, ENV, "application/json")

    assert json.loads(body) == {"q": "", "n": None}


def test_a_form_body_encodes_values_and_other_bodies_are_raw_text():
    arguments = {"a": "x&b=evil", "b": "1 2"}

    form = render_body("a={{a}}&b={{b}}", arguments, ENV, "application/x-www-form-urlencoded; charset=utf-8")
    text = render_body("Hello {{a}}, {{b}}", arguments, ENV, "text/plain")

    assert form == "a=x%26b%3Devil&b=1+2"
    assert text == "Hello x&b=evil, 1 2"


def test_the_child_environment_is_minimal_and_carries_the_arguments():
    environ = {
        "PATH": "/usr/bin:/bin",
        "HOME": "/home/svc",
        "LANG": "C.UTF-8",
        "SECRET_KEY": "s",
        "DATABASE_URL": "postgres://u:p@db/x",
        "USER": "svc",
        "TOKEN": "t0k",
    }

    env = child_environment(
        {"API": "Bearer ${TOKEN}", "PLAIN": "x"}, {"path": "/tmp", "count": 2, "flags": [True]}, environ
    )

    assert env == {
        "PATH": "/usr/bin:/bin",
        "HOME": "/home/svc",
        "LANG": "C.UTF-8",
        "API": "Bearer t0k",
        "PLAIN": "x",
        "GANTZ_ARG_PATH": "/tmp",
        "GANTZ_ARG_COUNT": "2",
        "GANTZ_ARG_FLAGS": "[true]",
    }


def test_a_nul_character_cannot_reach_a_process():
    with pytest.raises(PermanentToolError) as caught:
        child_environment({}, {"name": "a\u0000b"}, {})

    assert caught.value.code == "invalid_parameters"
