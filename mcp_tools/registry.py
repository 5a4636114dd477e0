"""The tool registry: ``gantz.yaml`` is its source, the ``Tool`` table its copy.

``load_definitions()`` reads the file (Gantz's format: top-level ``name``, a
``tools`` list, each with ``name``, ``description``, ``parameters`` and a
``script``); ``sync_tools()`` makes the table match it::

    report = sync_tools()     # {"created": [...], "updated": [...], "deactivated": [...]}

Each tool's ``parameters`` become a JSON Schema (``parameters_schema``).
Syncing is idempotent; a tool gone from the file is deactivated, never deleted,
so its executions and statistics stay on record.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings
from django.db import transaction

from .models import Tool, ToolUsageStats

# Gantz parameter types → JSON Schema types.
_JSON_TYPES = {
    "string": "string", "str": "string",
    "number": "number", "float": "number",
    "integer": "integer", "int": "integer",
    "boolean": "boolean", "bool": "boolean",
    "object": "object", "array": "array",
}


class RegistryError(ValueError):
    """gantz.yaml is missing or does not describe tools the way Gantz does."""


@dataclass(frozen=True)
class ToolDefinition:
    name: str
    description: str
    parameters_schema: dict[str, Any]
    timeout: int
    command: str = ""
    args: list[str] = field(default_factory=list)


def parse_timeout(value: Any, default: int) -> int:
    """Gantz writes timeouts as ``30s``, ``2m`` or plain seconds."""
    if value in (None, ""):
        return default
    match = re.fullmatch(r"\s*(\d+)\s*(ms|s|m|h)?\s*", str(value))
    if not match:
        raise RegistryError(f"Invalid timeout {value!r}: use seconds, e.g. 30s, 2m or 60.")
    number, unit = int(match[1]), match[2] or "s"
    return max(1, {"ms": number // 1000, "s": number, "m": number * 60, "h": number * 3600}[unit])


def build_schema(parameters: list[dict[str, Any]]) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required: list[str] = []
    for param in parameters or []:
        name = param.get("name")
        if not name:
            raise RegistryError(f"A parameter has no name: {param!r}")
        kind = str(param.get("type", "string")).lower()
        if kind not in _JSON_TYPES:
            raise RegistryError(f"Parameter {name!r} has unknown type {kind!r}.")
        prop: dict[str, Any] = {"type": _JSON_TYPES[kind]}
        if param.get("description"):
            prop["description"] = param["description"]
        if "default" in param:
            prop["default"] = param["default"]
        properties[name] = prop
        if param.get("required"):
            required.append(name)
    return {"type": "object", "properties": properties, "required": required,
            "additionalProperties": False}


def load_definitions(path: Path | None = None) -> list[ToolDefinition]:
    path = Path(path or settings.GANTZ_CONFIG)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise RegistryError(f"Tool definitions not found at {path}.") from exc
    if not isinstance(data, dict) or not isinstance(data.get("tools"), list):
        raise RegistryError(f"{path} must hold a mapping with a 'tools' list.")
    default_timeout = settings.MCP_CONFIG["DEFAULT_TIMEOUT"]
    definitions = []
    for item in data["tools"]:
        if not isinstance(item, dict) or not item.get("name"):
            raise RegistryError(f"Every tool in {path} needs a name: {item!r}")
        script = item.get("script") or {}
        definitions.append(ToolDefinition(
            name=item["name"],
            description=item.get("description", ""),
            parameters_schema=build_schema(item.get("parameters") or []),
            timeout=parse_timeout(script.get("timeout"), default_timeout),
            command=script.get("command", ""),
            args=[str(arg) for arg in script.get("args") or []],
        ))
    return definitions


_USAGE_SCHEMA = {"type": "object", "properties": {"input_tokens": {"type": "integer"},
                                                 "output_tokens": {"type": "integer"}},
                 "required": ["input_tokens", "output_tokens"]}
# Interim, until tools declare their results themselves: the two tools' result shapes.
_RESULTS: dict[str, tuple[str, dict[str, Any]]] = {
    "generate_report": ("report", {
        "type": "object", "required": ["report", "generated_at", "model", "usage"],
        "properties": {"report": {"type": "string"}, "generated_at": {"type": "string", "format": "date-time"},
                       "model": {"type": "string"}, "usage": _USAGE_SCHEMA}}),
    "summarize_content": ("summary", {
        "type": "object", "required": ["summary", "url", "content_length", "model", "usage"],
        "properties": {"summary": {"type": "string"}, "url": {"type": "string"},
                       "content_length": {"type": "integer"}, "model": {"type": "string"}, "usage": _USAGE_SCHEMA}}),
}


@transaction.atomic
def sync_tools(path: Path | None = None) -> dict[str, list[str]]:
    report: dict[str, list[str]] = {"created": [], "updated": [], "unchanged": [], "deactivated": []}
    definitions = load_definitions(path)
    for definition in definitions:
        wanted = {"description": definition.description, "parameters_schema": definition.parameters_schema,
                  "timeout": definition.timeout, "is_active": True}
        if definition.name in _RESULTS:
            output_field, output_schema = _RESULTS[definition.name]
            wanted.update(output_field=output_field, output_schema=output_schema, cacheable=True)
        tool, created = Tool.objects.get_or_create(name=definition.name, defaults=wanted)
        if created:
            report["created"].append(tool.name)
        elif any(getattr(tool, key) != value for key, value in wanted.items()):
            Tool.objects.filter(pk=tool.pk).update(**wanted)
            report["updated"].append(tool.name)
        else:
            report["unchanged"].append(tool.name)
        ToolUsageStats.objects.get_or_create(tool=tool)
    gone = Tool.objects.filter(is_active=True).exclude(name__in=[d.name for d in definitions])
    report["deactivated"] = sorted(gone.values_list("name", flat=True))
    gone.update(is_active=False)
    return report


def resolve_tool_name(name: str, path: Path | None = None) -> str:
    """Map a ``run_tool`` argument to a tool name.

    The article's gantz.yaml calls ``run_tool summarize`` for the tool named
    ``summarize_content``: a name is accepted as itself, or as the word after
    ``run_tool`` in a tool's script args.
    """
    definitions = load_definitions(path)
    for definition in definitions:
        if definition.name == name:
            return name
    for definition in definitions:
        args = definition.args
        if "run_tool" in args and args.index("run_tool") + 1 < len(args) and args[args.index("run_tool") + 1] == name:
            return definition.name
    return name
