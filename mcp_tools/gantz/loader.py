"""Loading a Gantz file: all of it, or nothing with every problem listed.

gantz-cli's format (``GANTZ.md``) plus four keys of ours per tool (gantz-cli ignores them)::

    pure: true                                    # results may be cached (default false)
    repeatable: false                             # never run twice after a lost worker (default true)
    access: {groups: [ops], permission: app.use_tool}   # who may see and use it (default everyone)
    allow_private: true                           # an http tool may call a private address such as
                                                  # 127.0.0.1 (default: MCP_ALLOW_PRIVATE_URLS); only
                                                  # when no parameter fills the URL's scheme or host

``load_gantz_file(path)`` returns a ``GantzFile`` or raises one
``GantzFileError`` whose ``problems`` name the tool and field of each mistake::

    tool 'list_files', script.timeout: '30x' is not a duration like 30s, 1m30s, 500ms
    tool 'fetch', http.url: {{city}} names no parameter (parameters: town)

Stricter than gantz-cli, on purpose (it starts and fails later, or silently):
names of tools (``[A-Za-z0-9_-]``, at most 64, as MCP clients require) and
parameters (identifiers, so ``GANTZ_ARG_<NAME>`` is a variable a shell can
read) are checked, as are types, durations, methods, URLs, ``extract_json``
paths, placeholders, unknown keys and references to the service's secrets.
``description`` stays optional, as in Gantz. ``${VAR}`` is *not* expanded
here (see ``environment.py``). A ``default`` is written as a string in Gantz;
it is converted to the parameter's type here (``""`` means none, as in Go).
"""

from __future__ import annotations

import json
import logging
import math
import re
from pathlib import Path
from typing import Any

import yaml

from .checks import Problems
from .environment import argument_variable
from .model import (
    JSON_SCHEMA_TYPES,
    GantzFile,
    GantzFileError,
    GantzParameter,
    GantzTool,
    Problem,
)
from .specs import check_allow_private, read_http, read_script
from .yamlfile import read_yaml

logger = logging.getLogger(__name__)

FILE_KEYS = ("name", "description", "version", "server", "tools")
TOOL_KEYS = (
    "name",
    "description",
    "parameters",
    "environment",
    "script",
    "http",
    "pure",
    "repeatable",
    "access",
    "allow_private",
)
PARAMETER_KEYS = ("name", "type", "description", "required", "default")
TYPE_ALIASES = {"str": "string", "float": "number", "int": "integer", "bool": "boolean"}
TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
PARAMETER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
PERMISSION = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\.\S+")
_GO_BOOLS = {"1": True, "t": True, "true": True, "0": False, "f": False, "false": False}


def load_gantz_file(path: Path) -> GantzFile:
    """The tools of the Gantz file at ``path``, or ``GantzFileError`` listing every problem."""
    path = Path(path).absolute()
    problems = Problems()
    try:
        data = read_yaml(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise GantzFileError(path, [_file_problem(f"cannot be read: {exc}")]) from exc
    except yaml.YAMLError as exc:
        raise GantzFileError(path, [_file_problem(f"is not valid YAML: {exc}")]) from exc
    if not isinstance(data, dict):
        raise GantzFileError(path, [_file_problem("must be a mapping with a tools list")])
    problems.known_keys(None, "", data, FILE_KEYS)
    gantz = GantzFile(
        name=problems.text(None, "name", data.get("name")) or "gantz-local",
        description=problems.text(None, "description", data.get("description")),
        version=problems.text(None, "version", data.get("version")) or "1.0.0",
        tools=_read_tools(problems, data.get("tools"), path.parent),
        path=path,
    )
    if problems:
        raise GantzFileError(path, problems.items)
    logger.debug("Loaded %d tools from %s", len(gantz.tools), path)
    return gantz


def _file_problem(message: str) -> Problem:
    return Problem(None, "", message)


def _read_tools(problems: Problems, value: Any, folder: Path) -> list[GantzTool]:
    tools: list[GantzTool] = []
    seen: set[str] = set()
    for index, data in enumerate(problems.listing(None, "tools", value)):
        if not isinstance(data, dict):
            problems.add(None, f"tools[{index}]", "must be a mapping")
            continue
        tool = _read_tool(problems, index, data, folder)
        if tool is None:
            continue
        if tool.name in seen:
            problems.add(tool.name, "name", "is used by another tool in this file")
        seen.add(tool.name)
        tools.append(tool)
    return tools


def _read_tool(problems: Problems, index: int, data: dict[str, Any], folder: Path) -> GantzTool | None:
    name = problems.text(None, f"tools[{index}].name", data.get("name"), required=True)
    if name and not TOOL_NAME.fullmatch(name):
        problems.add(name, "name", "may hold only letters, digits, _ and -, at most 64")
    label = name or f"tools[{index}]"
    problems.known_keys(label, "", data, TOOL_KEYS)
    parameters = _read_parameters(problems, label, data.get("parameters"))
    names = [parameter.name for parameter in parameters]
    has_script, has_http = bool(data.get("script")), bool(data.get("http"))
    if has_script == has_http:
        problems.add(label, "script/http", "a tool needs exactly one of script and http")
    groups, permission = _read_access(problems, label, data.get("access"))
    description = problems.text(label, "description", data.get("description"))
    environment = _read_environment(problems, label, data.get("environment"))
    script = read_script(problems, label, data["script"], names, folder) if has_script else None
    http = read_http(problems, label, data["http"], names) if has_http else None
    tool = GantzTool(
        name=name,
        description=description,
        parameters=tuple(parameters),
        environment=environment,
        script=script,
        http=http,
        pure=problems.flag(label, "pure", data.get("pure"), False),
        repeatable=problems.flag(label, "repeatable", data.get("repeatable"), True),
        access_groups=groups,
        access_permission=permission,
        allow_private=problems.flag(label, "allow_private", data.get("allow_private"), False),
        raw=json.loads(json.dumps(data)),
    )
    if tool.allow_private:
        check_allow_private(problems, label, http)
    return tool if name else None


def _read_environment(problems: Problems, tool: str, value: Any) -> dict[str, str]:
    environment = {}
    for key, item in problems.mapping(tool, "environment", value).items():
        text = environment[key] = problems.text(tool, f"environment.{key}", item)
        problems.references(tool, f"environment.{key}", text)
        problems.no_placeholders(tool, f"environment.{key}", text, "the value is in GANTZ_ARG_<NAME>")
    return environment


def _read_access(problems: Problems, tool: str, value: Any) -> tuple[tuple[str, ...], str]:
    """Our ``access`` key: the groups allowed (none: everyone) and a permission needed."""
    access = problems.mapping(tool, "access", value)
    problems.known_keys(tool, "access", access, ("groups", "permission"))
    groups = [
        problems.text(tool, f"access.groups[{index}]", group, required=True)
        for index, group in enumerate(problems.listing(tool, "access.groups", access.get("groups")))
    ]
    permission = problems.text(tool, "access.permission", access.get("permission"))
    if permission and not PERMISSION.fullmatch(permission):
        problems.add(tool, "access.permission", f"{permission!r} is not app_label.codename")
    return tuple(group for group in groups if group), permission


def _read_parameters(problems: Problems, tool: str, value: Any) -> list[GantzParameter]:
    parameters: list[GantzParameter] = []
    variables: dict[str, str] = {}
    for index, data in enumerate(problems.listing(tool, "parameters", value)):
        where = f"parameters[{index}]"
        if not isinstance(data, dict):
            problems.add(tool, where, "must be a mapping")
            continue
        name = problems.text(tool, f"{where}.name", data.get("name"), required=True)
        if not name:
            continue
        where = f"parameters.{name}"
        problems.known_keys(tool, where, data, PARAMETER_KEYS)
        if not PARAMETER_NAME.fullmatch(name):
            problems.add(tool, f"{where}.name", "must be an identifier (letters, digits, _)")
        variable = argument_variable(name)
        if variable in variables:
            problems.add(tool, f"{where}.name", f"clashes with {variables[variable]!r}: both would be {variable}")
        variables[variable] = name
        kind = _read_type(problems, tool, where, data.get("type"))
        default = problems.text(tool, f"{where}.default", data.get("default"))
        parameters.append(
            GantzParameter(
                name=name,
                type=kind,
                description=problems.text(tool, f"{where}.description", data.get("description")),
                required=problems.flag(tool, f"{where}.required", data.get("required"), False),
                default=_coerce_default(problems, tool, where, kind, default) if default else None,
            )
        )
    return parameters


def _read_type(problems: Problems, tool: str, where: str, value: Any) -> str:
    written = problems.text(tool, f"{where}.type", value) or "string"
    kind = TYPE_ALIASES.get(written.lower(), written.lower())
    if kind not in JSON_SCHEMA_TYPES:
        problems.add(
            tool, f"{where}.type", f"unknown type {written!r} (expected one of: {', '.join(JSON_SCHEMA_TYPES)})"
        )
        return "string"
    return kind


def _coerce_default(problems: Problems, tool: str, where: str, kind: str, text: str) -> Any:
    """``text`` (how Gantz writes every default) as a value of ``kind``."""
    try:
        if kind == "string":
            return text
        if kind == "integer":
            return int(text.strip(), 10)
        if kind == "number":
            number = float(text) if re.search(r"[.eE]", text) else int(text.strip(), 10)
            if isinstance(number, float) and not math.isfinite(number):
                raise ValueError(text)
            return number
        if kind == "boolean":
            return _GO_BOOLS[text.strip().lower()]
        value = json.loads(text)
        if isinstance(value, dict if kind == "object" else list):
            return value
    except (ValueError, KeyError):
        pass
    problems.add(tool, f"{where}.default", f"{text!r} is not a valid {kind}")
    return None
