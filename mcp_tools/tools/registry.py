"""The registry: every tool the service can run, by name, and the ``Tool`` table as its copy.

Two sources, one kind of object (``ToolSpec``):

* Python tools: ``@tool`` functions in the ``tools`` module of any installed
  app (imported at start-up by ``McpToolsConfig.ready``);
* the Gantz file (``settings.GANTZ_CONFIG``, gantz-cli's format,
  ``mcp_tools/gantz``): script and HTTP tools. An entry whose script runs
  ``manage.py run_tool <word>`` is the Gantz face of the Python tool with the
  entry's name: the service runs the Python function in-process, and the
  entry stays for Gantz (``manage.py run_tool`` maps ``<word>`` back to it).
  Its parameters must match the function's, and its ``timeout``, if any, is
  the tool's (Gantz kills the process then).

``sync_tools()`` makes the ``Tool`` rows match (created, updated; a tool gone
from every source is deactivated, never deleted, so its history stays)::

    report = sync_tools()     # {"created": [...], "updated": [...], "unchanged": [...], "deactivated": [...]}

A broken Gantz file loads nothing: ``GantzFileError`` lists every problem,
with the tool and field; ``manage.py check`` reports it too.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.db import transaction
from django.dispatch import receiver

from ..gantz import GantzFileError, GantzTool, Problem, load_gantz_file, run_http, run_script
from ..models import Tool, ToolUsageStats
from .api import ToolSpec, python_tools
from .context import ToolContext

RUN_TOOL_ARGS = ("manage.py", "run_tool")


def gantz_file() -> Path:
    return Path(settings.GANTZ_CONFIG)


def all_tools(path: Path | None = None) -> dict[str, ToolSpec]:
    """Every tool by name: the Python ones, and the Gantz file's (bound to Python ones where they say so)."""
    specs = python_tools()
    path = path or gantz_file()
    if not path.exists():
        return specs
    loaded = load_gantz_file(path)
    problems: list[Problem] = []
    for entry in loaded.tools:
        word = run_tool_word(entry)
        if word is None:
            if entry.name in specs:
                problems.append(
                    Problem(
                        entry.name,
                        "name",
                        "a Python tool has this name; to expose it to Gantz, "
                        "run `python manage.py run_tool` as its script",
                    )
                )
            specs[entry.name] = gantz_spec(entry)
            continue
        python = specs.get(entry.name)
        if python is None:
            problems.append(
                Problem(
                    entry.name,
                    "script.args",
                    f"runs manage.py run_tool {word}, but no Python tool is named {entry.name!r}",
                )
            )
            continue
        problems += _mismatches(entry, python)
        # The file's timeout is the one Gantz kills at: the service keeps to it too.
        specs[entry.name] = dataclasses.replace(
            python,
            aliases=(*python.aliases, word),
            timeout_s=entry.timeout_s() or python.timeout_s,
            definition={**python.definition, "gantz": entry.raw},
        )
    if problems:
        raise GantzFileError(path, problems)
    return specs


def _mismatches(entry: GantzTool, python: ToolSpec) -> list[Problem]:
    """A Gantz entry for a Python tool must declare the same parameters (Gantz passes what it declares)."""
    declared = {parameter.name: parameter.required for parameter in entry.parameters}
    wanted = {
        name: name in python.parameters_schema.get("required", [])
        for name in python.parameters_schema.get("properties", {})
    }
    if declared == wanted:
        return []
    return [
        Problem(
            entry.name,
            "parameters",
            f"must match the Python tool's parameters {sorted(wanted)} (required: "
            f"{sorted(n for n, r in wanted.items() if r)}); the file declares {sorted(declared)} "
            f"(required: {sorted(n for n, r in declared.items() if r)})",
        )
    ]


_cache: dict[str, Any] = {}


def load_tools() -> None:
    """Read the Gantz file and import the apps' tools, once per process (until ``forget_loaded_tools``)."""
    if "specs" not in _cache:
        _cache["specs"] = all_tools()


def tool_spec(name: str) -> ToolSpec | None:
    """The tool named ``name`` in this process (the tools are loaded on first use)."""
    load_tools()
    return _cache["specs"].get(name)


def forget_loaded_tools() -> None:
    """Read the sources again on next use (after sync_tools, and in tests)."""
    _cache.clear()


@receiver(setting_changed)
def _forget_when_the_sources_change(*, setting: str, **kwargs: Any) -> None:
    """A test that points at another Gantz file, installs an app or changes MCP_CONFIG gets its tools."""
    if setting in ("GANTZ_CONFIG", "INSTALLED_APPS", "MCP_CONFIG"):
        forget_loaded_tools()


def run_tool_word(entry: GantzTool) -> str | None:
    """The word after ``manage.py run_tool`` if the entry's script is that command, else None."""
    script = entry.script
    if script is None or script.shell or not script.args:
        return None
    args = list(script.args)
    for index in range(len(args) - 2):
        if tuple(args[index : index + 2]) == RUN_TOOL_ARGS:
            return args[index + 2]
    return None


def resolve_name(word: str) -> str:
    """A ``run_tool`` argument as a tool name: a name, or an alias the Gantz file gives one."""
    for spec in all_tools().values():
        if word == spec.name or word in spec.aliases:
            return spec.name
    return word


def gantz_spec(entry: GantzTool) -> ToolSpec:
    runner = run_http if entry.http is not None else run_script
    kind = Tool.Kind.HTTP if entry.http is not None else Tool.Kind.SCRIPT

    async def call(ctx: ToolContext, parameters: dict[str, Any]) -> dict[str, Any]:
        options: dict[str, Any] = {"emit": ctx.emit, "environ": os.environ}
        if entry.http is not None:
            options["allow_private"] = entry.allow_private or settings.MCP_CONFIG["ALLOW_PRIVATE_URLS"]
        return await runner(entry, parameters, **options)

    return ToolSpec(
        name=entry.name,
        description=entry.description,
        kind=kind,
        parameters_schema=entry.parameters_schema(),
        output_schema=entry.output_schema(),
        output_field="output",
        timeout_s=entry.timeout_s() or float(settings.MCP_CONFIG["DEFAULT_TIMEOUT"]),
        cacheable=entry.pure,
        repeatable=entry.repeatable,
        call=call,
        access_groups=tuple(entry.access_groups),
        access_permission=entry.access_permission,
        definition={"gantz": entry.raw},
    )


def row_fields(spec: ToolSpec) -> dict[str, Any]:
    return {
        "description": spec.description,
        "parameters_schema": spec.parameters_schema,
        "timeout": max(1, math.ceil(spec.timeout_s)),  # whole seconds, rounded up: a Gantz "500ms" is not 0
        "kind": spec.kind,
        "output_schema": spec.output_schema,
        "output_field": spec.output_field,
        "cacheable": spec.cacheable,
        "repeatable": spec.repeatable,
        "access_groups": list(spec.access_groups),
        "access_permission": spec.access_permission,
        "definition": spec.definition,
        "is_active": True,
    }


@transaction.atomic
def sync_tools(path: Path | None = None) -> dict[str, list[str]]:
    """Make the ``Tool`` rows match every source; a broken Gantz file changes nothing."""
    specs = all_tools(path)
    report: dict[str, list[str]] = {"created": [], "updated": [], "unchanged": [], "deactivated": []}
    for spec in specs.values():
        wanted = row_fields(spec)
        row, created = Tool.objects.get_or_create(name=spec.name, defaults=wanted)
        if created:
            report["created"].append(row.name)
        elif any(getattr(row, key) != value for key, value in wanted.items()):
            Tool.objects.filter(pk=row.pk).update(**wanted)
            report["updated"].append(row.name)
        else:
            report["unchanged"].append(row.name)
        ToolUsageStats.objects.get_or_create(tool=row)
    gone = Tool.objects.filter(is_active=True).exclude(name__in=list(specs))
    report["deactivated"] = sorted(gone.values_list("name", flat=True))
    gone.update(is_active=False)
    forget_loaded_tools()
    return report
