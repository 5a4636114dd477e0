"""``{{name}}`` placeholders: where a parameter's value goes, and how it is written there.

gantz-cli pastes the raw value wherever ``{{name}}`` stands. We write it so
that it can only ever be *data* where it lands::

    args     ["-n", "{{count}}"]          the value is one argv element, whatever it contains
    url      "https://x/{{city}}?q={{q}}"  percent-encoded: "/", "?", "&", "#" cannot restructure the URL
    header   "Bearer {{token}}"           as is (sent as UTF-8), but a control character
                                          such as CR/LF (a second header) is refused
    body     '{"q": "{{q}}", "n": {{n}}}' JSON: inside a string JSON-escaped, elsewhere a JSON value
    body     "a={{a}}&b={{b}}"            form-encoded when Content-Type says so, else raw text
    shell    see ``shell.py``: a reference to GANTZ_ARG_<NAME>, never the value

A placeholder is ``{{`` + an identifier + ``}}`` exactly (as gantz-cli matches
it); other braces (``{{.State}}``, ``{{ x }}``) are text. A parameter that is
missing and has no default is written as the empty string (JSON ``null`` as
a bare JSON value). Non-string values are written as JSON.

Environment references (``${VAR}``) are expanded in the literal parts only,
never in a value, so a value cannot pull a variable out of the service.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

from mcp_tools.errors import PermanentToolError

from .environment import argument_text, expand_env

logger = logging.getLogger(__name__)

PLACEHOLDER = re.compile(r"\{\{([A-Za-z_][A-Za-z0-9_]*)\}\}")
# Stands for a placeholder in text being analysed. It cannot occur in a
# process argument, a URL or a header, and a body containing it is not JSON.
MARK = "\0"
FORM_TYPE = "application/x-www-form-urlencoded"


def placeholder_names(text: str) -> list[str]:
    """The parameter names ``text``'s placeholders use, in order."""
    return PLACEHOLDER.findall(text)


def marked(text: str, environ: Mapping[str, str], keep: Callable[[str], bool] | None = None) -> tuple[str, list[str]]:
    """``text`` with its literal parts env-expanded (``keep`` as in ``expand_env``) and
    each placeholder replaced by ``MARK``; and the placeholders' names in order."""
    parts = PLACEHOLDER.split(text)  # literal, name, literal, name, ..., literal
    literals = [expand_env(part, environ, keep) for part in parts[::2]]
    if any(MARK in literal for literal in literals):  # the loader refuses NUL; this is a guard
        raise PermanentToolError("The tool's definition contains a NUL character.", code="tool_failed")
    return MARK.join(literals), parts[1::2]


def fill(text: str, values: list[str]) -> str:
    """``text`` with each ``MARK`` replaced by the next of ``values``."""
    pieces = text.split(MARK)
    return "".join(piece + value for piece, value in zip(pieces, [*values, ""], strict=True))


def render_arg(template: str, arguments: Mapping[str, Any], environ: Mapping[str, str]) -> str:
    """One argv element: the value, whatever it contains, stays inside it."""
    text, names = marked(template, environ)
    return fill(text, [_text(arguments, name) for name in names])


def render_url(template: str, arguments: Mapping[str, Any], environ: Mapping[str, str]) -> str:
    """The URL with every value percent-encoded (all but ``A-Z a-z 0-9 - . _ ~``)."""
    text, names = marked(template, environ)
    return fill(text, [quote(_text(arguments, name), safe="") for name in names])


def render_header(header: str, template: str, arguments: Mapping[str, Any], environ: Mapping[str, str]) -> str:
    """A header value; a control character in it (CR/LF would smuggle a second
    header) is refused. Tab is allowed, as HTTP allows it."""
    text, names = marked(template, environ)
    value = fill(text, [_text(arguments, name) for name in names])
    if any((ord(character) < 32 and character != "\t") or ord(character) == 127 for character in value):
        raise PermanentToolError(
            f"The {header} header would contain a line break or another control character;"
            " parameters cannot add headers.",
            code="invalid_parameters",
        )
    return value


def render_body(template: str, arguments: Mapping[str, Any], environ: Mapping[str, str], content_type: str) -> str:
    """The request body (see the module docstring for the three ways a value is written)."""
    text, names = marked(template, environ)
    media_type = content_type.split(";")[0].strip().lower()
    if media_type == FORM_TYPE:
        return fill(text, [quote_plus(_text(arguments, name), safe="") for name in names])
    in_string = json_mark_contexts(text)
    if in_string is None:
        return fill(text, [_text(arguments, name) for name in names])
    return fill(
        text,
        [
            _json_in_string(arguments, name) if inside else _json_value(arguments, name)
            for name, inside in zip(names, in_string, strict=True)
        ],
    )


def json_mark_contexts(text: str) -> list[bool] | None:
    """For each ``MARK`` in ``text``, whether it stands inside a JSON string;
    None if ``text`` is not JSON once the marks are filled."""
    contexts: list[bool] = []
    in_string = escaped = False
    for character in text:
        if character == MARK:
            contexts.append(in_string)
        elif escaped:
            escaped = False
        elif in_string and character == "\\":
            escaped = True
        elif character == '"':
            in_string = not in_string
    neutral = fill(text, ["x" if inside else "0" for inside in contexts])
    try:
        json.loads(neutral)
    except ValueError:
        return None
    return contexts


def _text(arguments: Mapping[str, Any], name: str) -> str:
    return argument_text(arguments[name]) if name in arguments else ""


def _json_in_string(arguments: Mapping[str, Any], name: str) -> str:
    return json.dumps(_text(arguments, name), ensure_ascii=False)[1:-1]


def _json_value(arguments: Mapping[str, Any], name: str) -> str:
    return json.dumps(arguments.get(name), ensure_ascii=False)
