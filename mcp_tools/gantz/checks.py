"""Small readers shared by the loader: each returns a value or records a Problem.

A ``Problems`` collects every problem of a file instead of stopping at the
first, so the author fixes the file in one pass::

    problems = Problems()
    name = problems.text("list_files", "script.command", value, required=True)
    if problems: raise GantzFileError(path, problems.items)

Scalars are read as gantz-cli's Go structs read them: a field that Gantz
declares as a string accepts any YAML scalar (``timeout: 30`` is "30",
``default: true`` is "true"), never a mapping or a list.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from .environment import is_service_secret, referenced_names
from .model import Problem
from .templates import placeholder_names

logger = logging.getLogger(__name__)

_FLAGS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}


class Problems:
    def __init__(self) -> None:
        self.items: list[Problem] = []

    def __bool__(self) -> bool:
        return bool(self.items)

    def add(self, tool: str | None, field: str, message: str) -> None:
        self.items.append(Problem(tool, field, message))

    def text(self, tool: str | None, field: str, value: Any, *, required: bool = False) -> str:
        """A string field; "" if absent (a problem if ``required``) or not a scalar."""
        if value is None or value == "":
            if required:
                self.add(tool, field, "is required")
            return ""
        if isinstance(value, dict | list):
            self.add(tool, field, f"must be a string, not a {'mapping' if isinstance(value, dict) else 'list'}")
            return ""
        text = scalar_text(value)
        if "\0" in text:
            self.add(tool, field, "contains a NUL character")
            return ""
        return text

    def flag(self, tool: str | None, field: str, value: Any, default: bool) -> bool:
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _FLAGS:
            return _FLAGS[value.lower()]
        self.add(tool, field, f"must be true or false, not {value!r}")
        return default

    def mapping(self, tool: str | None, field: str, value: Any) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.add(tool, field, "must be a mapping")
            return {}
        return {str(key): item for key, item in value.items()}

    def listing(self, tool: str | None, field: str, value: Any) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.add(tool, field, "must be a list")
            return []
        return value

    def known_keys(self, tool: str | None, field: str, data: dict[str, Any], known: Iterable[str]) -> None:
        """gantz-cli ignores unknown keys; we report them, since a misspelt
        ``timout`` would otherwise run the tool without its timeout."""
        known = tuple(known)
        for key in data:
            if key not in known:
                where = f"{field}.{key}" if field else key
                self.add(tool, where, f"unknown key (expected one of: {', '.join(known)})")

    def references(self, tool: str, field: str, text: str) -> None:
        """Refuse ``${VAR}`` naming one of the service's own secrets."""
        for name in sorted(referenced_names(text)):
            if is_service_secret(name):
                self.add(
                    tool, field, f"references ${{{name}}}, one of the service's own secrets; tools never get those"
                )

    def placeholders(self, tool: str, field: str, text: str, parameters: Iterable[str]) -> None:
        """Every ``{{name}}`` in ``text`` must name a parameter."""
        known = set(parameters)
        for name in placeholder_names(text):
            if name not in known:
                listed = ", ".join(sorted(known)) or "none"
                self.add(tool, field, f"{{{{{name}}}}} names no parameter (parameters: {listed})")

    def no_placeholders(self, tool: str, field: str, text: str, why: str) -> None:
        if placeholder_names(text):
            self.add(tool, field, f"placeholders are not substituted here; {why}")


def scalar_text(value: Any) -> str:
    """A YAML scalar as the text Gantz's string fields would hold."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
