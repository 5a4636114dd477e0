"""Hostile JSON: the one check every entry point runs before it believes a JSON body.

WebSocket frames (``consumers/protocol.py``), REST bodies (``api/parsers.py``)
and MCP requests (``mcp/bodyguard.py``, before the SDK parses) all go through
``loads``; the service checks parameters that arrived some other way (stdio,
the CLI) with ``parameters_check``::

    value = jsonguard.loads(frame_text)                  # parse, then check
    value = jsonguard.loads(body, max_bytes=limit)        # bytes: size first, then UTF-8

What is refused, and why (each a ``JsonRefused`` with its ``reason``):

    too_large     more bytes than the limit (``DATA_UPLOAD_MAX_MEMORY_SIZE`` for
                  HTTP bodies); answered 413 by the HTTP transports
    syntax        not JSON — including ``NaN`` / ``Infinity``, which are
                  Python's extension, and invalid UTF-8
    non_finite    a number beyond float range (``1e999`` parses to infinity);
                  PostgreSQL refuses it, SQLite's JSON check refuses it, and
                  a client that gets it back cannot parse it
    bad_unicode   a lone surrogate escape (``"\\ud800"``) or U+0000: not
                  storable (PostgreSQL refuses both; a surrogate cannot even be
                  encoded as UTF-8, so every later page showing it would fail)
    too_deep      nesting deeper than ``MCP_JSON_MAX_DEPTH`` (default 64): the
                  parsers and the JSON Schema validator recurse

Data already stored by older versions may hold any of these; ``displayable``
turns such a value into one every renderer can write (the REST API, the web
page's history, the admin), so old rows never break a page.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from django.conf import settings

from .errors import InvalidParameters

# Characters no database here stores: lone surrogates (not Unicode) and NUL (PostgreSQL).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# What a deeper part of a stored value is shown as.
TOO_DEEP_PLACEHOLDER = "…(nested too deep to show)"


class JsonRefused(ValueError):
    """Raised for JSON this service does not accept; ``reason`` says which rule it broke."""

    def __init__(self, reason: str, message: str, *, path: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.path = path


def max_depth() -> int:
    return settings.MCP_CONFIG["JSON_MAX_DEPTH"]


def loads(raw: str | bytes, *, max_bytes: int | None = None) -> Any:
    """Parse ``raw`` and check the result; ``JsonRefused`` for anything this service does not accept."""
    return check(parse(raw, max_bytes=max_bytes))


def parse(raw: str | bytes, *, max_bytes: int | None = None) -> Any:
    """The first half of ``loads``: size, UTF-8 and syntax only (a caller that wants to read
    something, such as a WebSocket ``request_id``, before ``check`` refuses the content)."""
    if isinstance(raw, bytes):
        if max_bytes is not None and len(raw) > max_bytes:
            raise JsonRefused("too_large", f"The body is {len(raw)} bytes; the limit is {max_bytes}.")
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise JsonRefused("syntax", "The body is not UTF-8 text.") from None
    elif max_bytes is not None and len(raw.encode("utf-8", "surrogatepass")) > max_bytes:
        raise JsonRefused("too_large", f"The body is larger than the limit of {max_bytes} bytes.")
    try:
        return json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError:
        raise JsonRefused("too_deep", f"The JSON nests deeper than {max_depth()} levels.") from None
    except ValueError as exc:
        raise JsonRefused("syntax", f"Not valid JSON: {exc}") from None


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def check(value: Any) -> Any:
    """``value`` itself if every string, number and nesting level in it is acceptable."""
    problem = _first_problem(value, max_depth())
    if problem is not None:
        reason, message, path = problem
        raise JsonRefused(reason, message, path=path)
    return value


def parameters_check(parameters: Any) -> None:
    """For parameters that did not come through ``loads`` (stdio, the CLI): InvalidParameters naming the spot."""
    try:
        check(parameters)
    except JsonRefused as exc:
        field = exc.path.split("/", 1)[0] or None
        raise InvalidParameters(
            exc.message, details=[{"field": field, "path": exc.path, "message": exc.message}]
        ) from None


def _first_problem(value: Any, limit: int) -> tuple[str, str, str] | None:
    """(reason, message, path) of the first unacceptable spot, or None. Iterative: no recursion on deep data."""
    pending: list[tuple[Any, int, str]] = [(value, 1, "")]
    while pending:
        item, depth, path = pending.pop()
        if isinstance(item, str):
            if _UNSTORABLE.search(item):
                return "bad_unicode", _unicode_message(item, path), path
        elif isinstance(item, float):
            if not math.isfinite(item):
                return "non_finite", f"{_at(path)}a number is out of range ({item!r}); numbers must be finite.", path
        elif isinstance(item, (dict, list)):
            if depth > limit:
                return "too_deep", f"The JSON nests deeper than {limit} levels.", path
            if isinstance(item, dict):
                for key, child in item.items():
                    if isinstance(key, str) and _UNSTORABLE.search(key):
                        return "bad_unicode", _unicode_message(key, path, what="a key"), path
                    pending.append((child, depth + 1, f"{path}/{key}" if path else str(key)))
            else:
                pending.extend(
                    (child, depth + 1, f"{path}/{index}" if path else str(index)) for index, child in enumerate(item)
                )
    return None


def _at(path: str) -> str:
    return f"At {path!r}: " if path else ""


def _unicode_message(text: str, path: str, *, what: str = "a string") -> str:
    if "\x00" in text:
        return f"{_at(path)}{what} holds U+0000, which cannot be stored."
    return f"{_at(path)}{what} holds an unpaired surrogate escape (like \\ud800), which is not Unicode."


# --- Showing what older versions stored -------------------------------------------------------


def displayable(value: Any) -> Any:
    """``value`` as every renderer can write it: unchanged when it is fine (the usual case),
    else a copy with unpaired surrogates and NUL replaced by U+FFFD, non-finite numbers
    as strings and anything deeper than ``MCP_JSON_MAX_DEPTH`` as a placeholder."""
    limit = max_depth()
    if _first_problem(value, limit) is None:
        return value
    return _cleaned(value, 1, limit)


def _cleaned(value: Any, depth: int, limit: int) -> Any:
    # Recursion is bounded by ``limit``: nothing below it is visited.
    if isinstance(value, str):
        return displayable_text(value)
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value).replace("inf", "Infinity").replace("nan", "NaN")
    if isinstance(value, (dict, list)) and depth > limit:
        return TOO_DEEP_PLACEHOLDER
    if isinstance(value, dict):
        return {displayable_text(key): _cleaned(child, depth + 1, limit) for key, child in value.items()}
    if isinstance(value, list):
        return [_cleaned(child, depth + 1, limit) for child in value]
    return value


def displayable_text(text: str | None) -> str | None:
    """A stored string with unpaired surrogates and NUL replaced by U+FFFD."""
    if text is None or not _UNSTORABLE.search(text):
        return text
    return _UNSTORABLE.sub("\ufffd", text)
