"""``py_lines(n)``: the same lines as bench/gantz_tools.yaml's ``lines``, written by an in-process Python tool."""

from __future__ import annotations

from mcp_tools.tools import ToolContext, tool


@tool(description="Emit n numbered lines, one emit a line (the benchmark's in-process tool)")
async def py_lines(ctx: ToolContext, n: int) -> None:
    for number in range(1, n + 1):
        ctx.emit(f"line {number:06d}\n")
