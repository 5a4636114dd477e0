"""The fixture tools, registered with the project's tool API (found like any app's ``tools.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mcp_tools.tools import SyncToolContext, tool

from .definitions import FIXTURES


def _adapter(run: Callable[[dict, SyncToolContext], dict]) -> Callable[..., dict]:
    def call(ctx: SyncToolContext, **parameters: Any) -> dict:
        return run(parameters, ctx)

    call.__name__ = call.__qualname__ = run.__name__
    call.__module__ = run.__module__
    return call


for fixture in FIXTURES:
    tool(
        _adapter(fixture.run),
        name=fixture.name,
        description=fixture.description,
        output_field="text",
        timeout=fixture.timeout,
        mcp_tasks=fixture.tasks,
        parameters_schema=fixture.parameters,
        output_schema=fixture.output,
    )
