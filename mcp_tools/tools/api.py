"""Add your own tool: a Python function with type hints and the ``@tool`` decorator.

Put it in a ``tools.py`` module of any app in ``INSTALLED_APPS`` (found at
start-up, like ``admin.py``), then run ``python manage.py sync_tools``::

    from typing import Annotated
    from pydantic import Field
    from mcp_tools.tools import ToolContext, tool

    @tool(description="Count to n, one line at a time")
    async def count(ctx: ToolContext, n: Annotated[int, Field(ge=1, le=1000)] = 10) -> None:
        for i in range(1, n + 1):
            ctx.emit(f"{i}\\n")            # each line reaches the client as it is written
            await asyncio.sleep(0.1)

The parameters' JSON Schema comes from the hints (``signature.py``); the
first argument is the context (``context.py``): ``ctx.emit``,
``await ctx.generate(...)`` (Claude, streamed), ``ctx.check()``/``ctx.cancelled``,
``ctx.user``. The text the tool emits is its streamed output and the result's
``output_field`` (``"output"`` unless you name another); return a dict (or a
TypedDict, pydantic model or dataclass) for the result's other fields, a
string to emit it as the output, or None. A plain ``def`` works too: it runs
in a thread of the engine's pool (``MCP_SYNC_TOOL_THREADS`` at once per worker
process) with a ``SyncToolContext`` whose ``generate`` blocks.

Options: ``name`` (default: the function's name), ``description`` (default:
its docstring), ``output_field``, ``timeout`` (seconds; default
``MCP_DEFAULT_TIMEOUT``), ``cacheable`` (equal parameters give an equal result:
answers may come from the result cache), ``repeatable`` (safe to run again
after a worker was lost; default true), ``groups`` / ``permission`` (who may
see and run it; default everyone), ``mcp_tasks`` (how MCP clients may run it:
``"optional"`` as a task or not, ``"required"``, ``"forbidden"``; docs/mcp.md).

When type hints cannot say it, give the JSON Schemas yourself:
``parameters_schema=`` (the function then takes ``ctx, **parameters`` as the
client sent them, already validated against it) and ``output_schema=``.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.exceptions import AppRegistryNotReady

from .context import SyncToolContext, ToolContext
from .signature import Signature, result_as_dict

ToolCall = Callable[[ToolContext, dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class ToolSpec:
    """One tool as the service knows it, whatever defined it (Python, or a Gantz script/HTTP call)."""

    name: str
    description: str
    kind: str  # Tool.Kind: python, script, http
    parameters_schema: dict[str, Any]
    output_schema: dict[str, Any]
    output_field: str
    timeout_s: float
    cacheable: bool
    repeatable: bool
    call: ToolCall = field(repr=False, compare=False)
    access_groups: tuple[str, ...] = ()
    access_permission: str = ""
    definition: dict[str, Any] = field(default_factory=dict)  # as written; never expanded secrets
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Registration:
    spec: ToolSpec
    app: str | None  # the installed app whose module defined the tool, when it registered


_python_tools: dict[str, _Registration] = {}


def tool(
    function: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    output_field: str = "output",
    timeout: float | None = None,
    cacheable: bool = False,
    repeatable: bool = True,
    groups: tuple[str, ...] | list[str] = (),
    permission: str = "",
    aliases: tuple[str, ...] | list[str] = (),
    mcp_tasks: str = "optional",
    parameters_schema: dict[str, Any] | None = None,
    output_schema: dict[str, Any] | None = None,
) -> Any:
    """Register ``function`` as a tool (usable bare, ``@tool``, or with options, ``@tool(...)``)."""

    def register(function: Callable[..., Any]) -> Callable[..., Any]:
        tool_name = name or function.__name__
        arguments: Callable[[dict[str, Any]], dict[str, Any]]  # the call's keyword arguments from its parameters
        if parameters_schema is None:
            signature = Signature(function, tool_name=tool_name, output_field=output_field)
            schemas = (signature.parameters_schema(), output_schema or signature.output_schema())
            arguments = signature.arguments
        else:
            schemas = (
                parameters_schema,
                output_schema
                or {"type": "object", "required": [output_field], "properties": {output_field: {"type": "string"}}},
            )
            arguments = dict.copy
        spec = ToolSpec(
            name=tool_name,
            description=description or inspect.cleandoc(function.__doc__ or "") or tool_name,
            kind="python",
            parameters_schema=schemas[0],
            output_schema=schemas[1],
            output_field=output_field,
            timeout_s=float(timeout or settings.MCP_CONFIG["DEFAULT_TIMEOUT"]),
            cacheable=cacheable,
            repeatable=repeatable,
            call=_python_call(function, arguments),
            access_groups=tuple(groups),
            access_permission=permission,
            aliases=tuple(aliases),
            definition={"python": f"{function.__module__}.{function.__qualname__}", "mcp": {"tasks": mcp_tasks}},
        )
        existing = _python_tools.get(tool_name)
        if existing is not None and existing.spec.definition != spec.definition:
            raise ValueError(
                f"Two Python tools are named {tool_name!r}: {existing.spec.definition['python']} "
                f"and {spec.definition['python']}."
            )
        _python_tools[tool_name] = _Registration(spec, _defining_app(function.__module__))
        return function

    return register(function) if function is not None else register


def python_tools() -> dict[str, ToolSpec]:
    """The registered Python tools, less those of an app that is no longer installed.

    A tool belongs to the installed app whose module defined it; one defined
    outside every app (a library imported by an app's ``tools.py``) always
    counts. So a test that installs an app for a while (``override_settings``)
    takes its tools away with it."""
    return {
        name: registration.spec
        for name, registration in _python_tools.items()
        if registration.app is None or apps.is_installed(registration.app)
    }


def _defining_app(module: str) -> str | None:
    try:
        config = apps.get_containing_app_config(module)
    except AppRegistryNotReady:  # imported before the apps were loaded: not discovered as an app's
        return None
    return config.name if config is not None else None


def _python_call(function: Callable[..., Any], arguments: Callable[[dict[str, Any]], dict[str, Any]]) -> ToolCall:
    """How the engine calls ``function``: awaited on its loop, or (a plain def) in the tools' thread pool."""
    if inspect.iscoroutinefunction(function):

        async def call(ctx: ToolContext, parameters: dict[str, Any]) -> dict[str, Any]:
            return _finish(ctx, await function(ctx, **arguments(parameters)))
    else:

        async def call(ctx: ToolContext, parameters: dict[str, Any]) -> dict[str, Any]:
            loop = asyncio.get_running_loop()
            sync_context = SyncToolContext(ctx, loop)
            value = await loop.run_in_executor(
                sync_tool_pool(), functools.partial(function, sync_context, **arguments(parameters))
            )
            return _finish(ctx, value)

    return call


def _finish(ctx: ToolContext, value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        ctx.emit(value)
    return result_as_dict(value)


_pool: ThreadPoolExecutor | None = None
_pool_pid = 0
_pool_lock = threading.Lock()


def sync_tool_pool() -> ThreadPoolExecutor:
    """The threads synchronous tools run in (one pool per process; a forked child makes its own)."""
    global _pool, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool = ThreadPoolExecutor(
                max_workers=settings.MCP_CONFIG["SYNC_TOOL_THREADS"], thread_name_prefix="sync-tool"
            )
            _pool_pid = os.getpid()
        return _pool
