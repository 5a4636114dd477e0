"""A Gantz file as loaded: immutable definitions, still holding ``${VAR}`` as written.

``load_gantz_file`` (``loader.py``) builds these; the executors read them.
Nothing here is ever expanded from the environment, so any of it may be stored
and shown::

    gantz = load_gantz_file(Path("gantz.yaml"))
    tool = gantz.tools[0]
    tool.parameters_schema()   # validates a request's parameters
    tool.output_schema()       # {output, exit_code} for a script, {output, status} for http
    tool.timeout_s()           # the script's or request's timeout, None if the file has none

A problem found while loading is a ``Problem`` (tool, field, message); the
loader raises one ``GantzFileError`` holding all of them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

JSON_SCHEMA_TYPES = ("string", "number", "integer", "boolean", "object", "array")
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
SAFE_METHODS = frozenset({"GET", "HEAD"})  # retrying them cannot do anything twice
# gantz-cli's own default for both timeouts; ``timeout_s()`` leaves it to the engine.
GANTZ_DEFAULT_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a Gantz file. ``tool`` is None for the file itself."""

    tool: str | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"tool {self.tool!r}" if self.tool is not None else "file"
        return f"{where}, {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class GantzFileError(Exception):
    """A Gantz file that cannot be loaded; ``problems`` lists everything wrong with it."""

    def __init__(self, path: Path, problems: list[Problem]) -> None:
        self.path = path
        self.problems = problems
        super().__init__("\n".join(str(problem) for problem in problems))


@dataclass(frozen=True)
class GantzParameter:
    name: str
    type: str  # a JSON Schema type (``int`` in the file reads as ``integer``)
    description: str = ""
    required: bool = False
    default: Any = None  # coerced to ``type``; None: no default

    def schema(self) -> dict[str, Any]:
        prop: dict[str, Any] = {"type": self.type}
        if self.description:
            prop["description"] = self.description
        if self.default is not None:
            prop["default"] = self.default
        return prop


@dataclass(frozen=True)
class ScriptSpec:
    command: str  # "" in shell mode
    args: tuple[str, ...]
    shell: str  # "" in command mode
    working_dir: Path  # absolute; the Gantz file's folder unless the file says otherwise
    timeout_s: float | None


@dataclass(frozen=True)
class HttpSpec:
    method: str
    url: str
    headers: dict[str, str]
    body: str | None
    timeout_s: float | None
    extract_json: str  # "" for none


@dataclass(frozen=True)
class GantzTool:
    name: str
    description: str
    parameters: tuple[GantzParameter, ...]
    environment: dict[str, str]  # as written: ${VAR} not expanded
    script: ScriptSpec | None
    http: HttpSpec | None
    pure: bool = False  # our key ``pure: true``: results may be cached
    repeatable: bool = True  # our key ``repeatable: false``: never run twice
    access_groups: tuple[str, ...] = ()  # our key ``access: {groups: [...], permission: app.codename}``
    access_permission: str = ""
    allow_private: bool = False  # our key ``allow_private: true``: an http tool may call a private address
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def kind(self) -> str:
        return "script" if self.script is not None else "http"

    def timeout_s(self) -> float | None:
        spec = self.script or self.http
        return spec.timeout_s if spec is not None else None

    def parameters_schema(self) -> dict[str, Any]:
        """A JSON Schema (2020-12 vocabulary) for the tool's parameters object."""
        return {
            "type": "object",
            "properties": {parameter.name: parameter.schema() for parameter in self.parameters},
            "required": [parameter.name for parameter in self.parameters if parameter.required],
            "additionalProperties": False,
        }

    def output_schema(self) -> dict[str, Any]:
        """The result object: ``output`` (all streamed text) and the exit code or HTTP status."""
        number = "exit_code" if self.script is not None else "status"
        return {
            "type": "object",
            "properties": {"output": {"type": "string"}, number: {"type": "integer"}},
            "required": ["output", number],
        }

    def arguments(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """``parameters`` (already validated) with the defaults of missing ones added."""
        defaults = {p.name: p.default for p in self.parameters if p.default is not None}
        return {**defaults, **parameters}


@dataclass(frozen=True)
class GantzFile:
    name: str
    description: str
    version: str
    tools: list[GantzTool]
    path: Path
