"""What a Gantz tool's process may know about the service: almost nothing.

gantz-cli hands a tool the server's whole environment. Ours is a web service
whose environment holds its database password and API keys, so a tool's
process starts from a **minimal environment** and gets only::

    PATH, HOME, LANG                     copied from the service, if set
    the tool's ``environment`` map       ${VAR} / $VAR expanded from the service's environment
    GANTZ_ARG_<NAME> per parameter       strings as they are, other values as JSON

``${VAR}`` and ``$VAR`` are expanded the way Go's ``os.ExpandEnv`` does it
(gantz-cli expands its whole file with it; ``expand_env``), but at run time
and only in the fields that carry them (``environment`` values, ``command``,
``args``, ``shell``, ``url``, header values, ``body``): the definition we store
and show keeps ``${VAR}`` as written, so no expanded value reaches the
database, the admin or the API.

A tool may not reference the service's own secrets at all (the loader refuses
it): ``SERVICE_SECRET_NAMES`` and ``SERVICE_SECRET_PATTERNS`` are that list,
kept here and nowhere else.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from mcp_tools.errors import PermanentToolError

logger = logging.getLogger(__name__)

# The service's own secrets (config/settings.py and ./dev read them from the
# environment). A tool whose definition references one is refused.
SERVICE_SECRET_NAMES = frozenset(
    {
        "SECRET_KEY",
        "DJANGO_SECRET_KEY",
        "DATABASE_URL",
        "REDIS_URL",
        "CELERY_BROKER_URL",
        "ANTHROPIC_API_KEY",
        "TEST_DATABASE_URL",
        "TEST_REDIS_URL",
    }
)
SERVICE_SECRET_PATTERNS = ("*_PASSWORD", "*_SECRET*")
BASE_VARIABLES = ("PATH", "HOME", "LANG")
ARGUMENT_PREFIX = "GANTZ_ARG_"

_SPECIAL = frozenset("*#$@!?-0123456789")  # Go's isShellSpecialVar
_NAME_START = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def is_service_secret(name: str) -> bool:
    """Whether ``name`` (a variable a definition references) is one of our secrets."""
    upper = name.upper()
    return upper in SERVICE_SECRET_NAMES or any(
        fnmatch.fnmatchcase(upper, pattern) for pattern in SERVICE_SECRET_PATTERNS
    )


def argument_variable(name: str) -> str:
    """``GANTZ_ARG_<NAME>``: the parameter's name upper-cased, as gantz-cli does."""
    return ARGUMENT_PREFIX + name.upper()


def argument_text(value: Any) -> str:
    """A parameter value as text: a string as it is, anything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def child_environment(
    variables: Mapping[str, str], arguments: Mapping[str, Any], environ: Mapping[str, str]
) -> dict[str, str]:
    """The whole environment of a tool's process (see the module docstring)."""
    env = {name: environ[name] for name in BASE_VARIABLES if name in environ}
    env.setdefault("PATH", os.defpath)
    for name, template in variables.items():
        env[name] = expand_env(template, environ)
    for name, value in arguments.items():
        env[argument_variable(name)] = argument_text(value)
    for name, value in env.items():
        if "\0" in value:
            raise PermanentToolError(
                f"{name} would contain a NUL character, which a process cannot receive.", code="invalid_parameters"
            )
    return env


# --- Go's os.ExpandEnv ----------------------------------------------------------


def expand_env(text: str, environ: Mapping[str, str], keep: Callable[[str], bool] | None = None) -> str:
    """``text`` with ``${VAR}``/``$VAR`` replaced as Go's ``os.ExpandEnv`` does.

    An unset variable becomes ``""``; ``$`` not followed by a name stays; bad
    syntax (``${}``, an unclosed ``${``) is dropped. A reference whose name
    ``keep`` approves is left as written (for the shell to expand)."""
    pieces: list[str] = []
    for literal, name, written in scan_references(text):
        pieces.append(literal)
        if name is None:
            pieces.append(written if keep is not None and written else "")
        elif keep is not None and keep(name):
            pieces.append(written)
        else:
            pieces.append(environ.get(name, ""))
    return "".join(pieces)


def referenced_names(text: str) -> set[str]:
    """The variable names ``text`` references (``${X:-y}`` counts as ``X``)."""
    names = set()
    for _literal, name, _written in scan_references(text):
        if name is not None:
            match = _NAME_START.match(name)
            names.add(match[0] if match else name)
    return names


def is_shell_variable(name: str) -> bool:
    """A name the shell owns rather than the service: ``$1``, ``$?``, ``${x:-y}``."""
    return name in _SPECIAL or not _NAME_START.fullmatch(name)


def scan_references(text: str) -> Iterator[tuple[str, str | None, str]]:
    """``(literal, name, written)`` triples covering ``text`` in order.

    ``name`` is None where Go drops bad syntax (``written`` is that text) and
    at the end (``written`` is ""). A ``$`` not followed by a name is literal."""
    start = index = 0
    while index < len(text) - 1:
        if text[index] != "$":
            index += 1
            continue
        name, width = _shell_name(text, index + 1)
        if not name and not width:  # a lone "$": literal, as Go keeps it
            index += 1
            continue
        yield text[start:index], (name or None), text[index : index + 1 + width]
        index = start = index + 1 + width
    yield text[start:], None, ""


def _shell_name(text: str, at: int) -> tuple[str, int]:
    """Go's getShellName: the name starting at ``text[at]`` and the characters it used."""
    if text[at] == "{":
        if at + 2 < len(text) and text[at + 1] in _SPECIAL and text[at + 2] == "}":
            return text[at + 1], 3
        close = text.find("}", at + 1)
        if close == -1:
            return "", 1  # bad syntax: Go drops the "${"
        if close == at + 1:
            return "", 2  # bad syntax: Go drops the "${}"
        return text[at + 1 : close], close - at + 1
    if text[at] in _SPECIAL:
        return text[at], 1
    end = at
    while end < len(text) and (text[end] == "_" or (text[end].isascii() and text[end].isalnum())):
        end += 1
    return text[at:end], end - at
