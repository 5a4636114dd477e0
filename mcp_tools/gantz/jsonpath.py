"""``extract_json`` paths: a dotted key path with ``[index]`` for arrays.

gantz-cli's syntax, parsed strictly (gantz-cli reads ``a[x]`` as ``a[0]``)::

    parse_json_path("data.current.temp")   # ("data", "current", "temp")
    parse_json_path("items[0].name")       # ("items", 0, "name")
    parse_json_path("[0][1]")              # (0, 1): the document is an array

``extract(document, steps)`` follows the steps and raises ``PathNotFound``
naming the first step that is missing, so a tool can fail with a clear error.
``as_output(value)`` is what the tool returns: a string as it is, any other
JSON value as its JSON text (indented by two spaces, as gantz-cli does).
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

logger = logging.getLogger(__name__)

Step = str | int


class PathNotFound(LookupError):
    """The document has nothing at the path; the message says where it stops."""


_SEGMENT = re.compile(r"([^.\[\]]*)((?:\[\d+\])*)")
_INDEX = re.compile(r"\[(\d+)\]")


def parse_json_path(path: str) -> tuple[Step, ...]:
    """The steps of ``path``; ``ValueError`` says what is wrong with it."""
    if not path:
        raise ValueError("the path is empty")
    steps: list[Step] = []
    for position, segment in enumerate(path.split(".")):
        match = _SEGMENT.fullmatch(segment)
        if match is None:
            raise ValueError(f"{segment!r} is not a key or key[index]")
        key, indexes = match[1], match[2]
        if not key and not (position == 0 and indexes):
            raise ValueError("a key is empty (two dots, or a dot at an end)")
        if key:
            steps.append(key)
        steps.extend(int(index) for index in _INDEX.findall(indexes))
    return tuple(steps)


def extract(document: Any, steps: tuple[Step, ...]) -> Any:
    """The value at ``steps`` in ``document``; ``PathNotFound`` if it is not there."""
    current = document
    for done, step in enumerate(steps):
        where = _describe(steps[:done])
        if isinstance(step, int):
            if not isinstance(current, list):
                raise PathNotFound(f"{where} is not an array")
            if step >= len(current):
                raise PathNotFound(f"{where} has {len(current)} items, no [{step}]")
        elif not isinstance(current, dict):
            raise PathNotFound(f"{where} is not an object")
        elif step not in current:
            raise PathNotFound(f"{where} has no key {step!r}")
        current = current[step]
    return current


def as_output(value: Any) -> str:
    """The tool's output for an extracted value."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, indent=2)


def _describe(steps: tuple[Step, ...]) -> str:
    if not steps:
        return "the document"
    text = "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in steps)
    return text.lstrip(".")
