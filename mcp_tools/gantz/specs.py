"""Reading a tool's ``script`` or ``http`` block, recording every problem.

``script``: exactly one of ``command`` (run with ``args``, no shell) and
``shell`` (run by ``/bin/sh -c``); placeholders in ``args`` and ``shell`` only.
``working_dir`` is read relative to the Gantz file's folder and defaults to
that folder (gantz-cli uses its own current directory, which for a service
is an accident of how it was started). It may point anywhere, ``..`` included:
the file's author already chooses the command, so fencing the directory in
would protect nothing; it must exist when the file is loaded, and it may not
use ``${VAR}``, since it is checked here.

``http``: ``url`` is required and must be http(s) (a parameter may not choose
the scheme); ``method`` defaults to GET; ``body`` is a string (JSON is written
as a quoted string or a ``|`` block, as in Gantz); header names are HTTP
tokens, and a header value may not contain a line break.

``allow_private: true`` (our key) lets an http tool reach a private address
past the SSRF guard, for a service on the same host or network (the example
``service_health`` in the project's ``gantz.yaml`` calls the service itself).
It is refused when a parameter fills the URL's scheme or host
(``http://{{host}}/``, ``${BASE}{{path}}``): then a caller, not the file's
author, would choose which private address is reached. ``${VAR}`` there is
the operator's, and allowed.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from .checks import Problems
from .durations import DurationError, parse_duration
from .jsonpath import parse_json_path
from .model import HTTP_METHODS, HttpSpec, ScriptSpec
from .shell import shell_problems
from .templates import placeholder_names

logger = logging.getLogger(__name__)

SCRIPT_KEYS = ("command", "args", "shell", "working_dir", "timeout")
HTTP_KEYS = ("method", "url", "headers", "body", "timeout", "extract_json")
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
# The start of a URL up to its path: the scheme and host (or the ${VAR} standing for them).
_ORIGIN = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.-]*://)?[^/?#]*")


def read_script(problems: Problems, tool: str, value: Any, parameters: list[str], folder: Path) -> ScriptSpec | None:
    data = problems.mapping(tool, "script", value)
    problems.known_keys(tool, "script", data, SCRIPT_KEYS)
    command = problems.text(tool, "script.command", data.get("command"))
    shell = problems.text(tool, "script.shell", data.get("shell"))
    if bool(command) == bool(shell):
        problems.add(tool, "script", "needs exactly one of command (with args) and shell")
    args = _read_args(problems, tool, data.get("args"), parameters)
    if shell and args:
        problems.add(tool, "script.args", "are passed to command; shell mode has none")
    problems.references(tool, "script.command", command)
    problems.no_placeholders(tool, "script.command", command, "put them in args")
    problems.references(tool, "script.shell", shell)
    problems.placeholders(tool, "script.shell", shell, parameters)
    for message in shell_problems(shell):
        problems.add(tool, "script.shell", message)
    return ScriptSpec(
        command=command,
        args=tuple(args),
        shell=shell,
        working_dir=_read_working_dir(problems, tool, data.get("working_dir"), folder),
        timeout_s=_read_timeout(problems, tool, "script.timeout", data.get("timeout")),
    )


def read_http(problems: Problems, tool: str, value: Any, parameters: list[str]) -> HttpSpec | None:
    data = problems.mapping(tool, "http", value)
    problems.known_keys(tool, "http", data, HTTP_KEYS)
    method = (problems.text(tool, "http.method", data.get("method")) or "GET").upper()
    if method not in HTTP_METHODS:
        problems.add(tool, "http.method", f"{method!r} is not one of {', '.join(HTTP_METHODS)}")
    url = problems.text(tool, "http.url", data.get("url"), required=True)
    _check_url(problems, tool, url, parameters)
    headers = _read_headers(problems, tool, data.get("headers"), parameters)
    body = problems.text(tool, "http.body", data.get("body")) if "body" in data else None
    if body is not None:
        problems.references(tool, "http.body", body)
        problems.placeholders(tool, "http.body", body, parameters)
    extract_json = problems.text(tool, "http.extract_json", data.get("extract_json"))
    if extract_json:
        try:
            parse_json_path(extract_json)
        except ValueError as exc:
            problems.add(tool, "http.extract_json", f"{extract_json!r}: {exc}")
    return HttpSpec(
        method=method,
        url=url,
        headers=headers,
        body=body or None,
        timeout_s=_read_timeout(problems, tool, "http.timeout", data.get("timeout")),
        extract_json=extract_json,
    )


def _read_args(problems: Problems, tool: str, value: Any, parameters: list[str]) -> list[str]:
    args = []
    for index, item in enumerate(problems.listing(tool, "script.args", value)):
        arg = problems.text(tool, f"script.args[{index}]", item)
        problems.references(tool, f"script.args[{index}]", arg)
        problems.placeholders(tool, f"script.args[{index}]", arg, parameters)
        args.append(arg)
    return args


def _read_working_dir(problems: Problems, tool: str, value: Any, folder: Path) -> Path:
    written = problems.text(tool, "script.working_dir", value)
    if not written:
        return folder
    if "$" in written or "{{" in written:
        problems.add(
            tool, "script.working_dir", "cannot use ${VAR} or placeholders: it is checked when the file is loaded"
        )
        return folder
    directory = Path(os.path.normpath(folder / written))
    if not directory.is_dir():
        problems.add(tool, "script.working_dir", f"{written!r} is not a directory ({directory})")
    return directory


def _read_timeout(problems: Problems, tool: str, field: str, value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        return parse_duration(value)
    except DurationError as exc:
        problems.add(tool, field, str(exc))
        return None


def _check_url(problems: Problems, tool: str, url: str, parameters: list[str]) -> None:
    problems.references(tool, "http.url", url)
    problems.placeholders(tool, "http.url", url, parameters)
    if not url or url.startswith("$"):
        return  # the scheme comes from the environment; checked when the tool runs
    scheme = _SCHEME.match(url)
    if "{{" in url.split("://")[0]:
        problems.add(tool, "http.url", "a parameter cannot choose the URL's scheme or start")
    elif scheme is None or scheme[1].lower() not in ("http", "https"):
        problems.add(tool, "http.url", f"{url!r} is not an absolute http(s) URL")


def _read_headers(problems: Problems, tool: str, value: Any, parameters: list[str]) -> dict[str, str]:
    headers = {}
    for name, item in problems.mapping(tool, "http.headers", value).items():
        field = f"http.headers.{name}"
        if not HEADER_NAME.fullmatch(name):
            problems.add(tool, field, "is not a valid header name")
        text = problems.text(tool, field, item)
        if "\r" in text or "\n" in text:
            problems.add(tool, field, "a header value cannot contain a line break")
        problems.references(tool, field, text)
        problems.placeholders(tool, field, text, parameters)
        headers[name] = text
    return headers


def check_allow_private(problems: Problems, tool: str, http: HttpSpec | None) -> None:
    """``allow_private`` only for an http tool whose scheme and host no parameter fills."""
    if http is None:
        problems.add(tool, "allow_private", "applies to http tools only")
        return
    origin = _ORIGIN.match(http.url)
    if origin is not None and placeholder_names(origin[0]):
        problems.add(
            tool,
            "allow_private",
            f"cannot be used when a parameter fills the URL's scheme or host "
            f"({origin[0]!r}): a caller could then choose any private address",
        )
