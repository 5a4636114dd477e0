"""Python tools of an installed app, found at start-up like its ``admin.py``: what a team adds to its project.

Installed only for tests: ``MCP_EXTRA_APPS=tests.tool_app`` in the production
stack's processes (``tests/stack.py``), ``settings.INSTALLED_APPS`` in the
test process (``tests/tools/conftest.py``). One tool per thing the API does:

* ``count_to``: an async tool streaming with ``ctx.emit``; it can wait, after
  its first line, for a line on a FIFO (so a test sees a delta while it runs);
* ``word_stats``: a plain ``def``, run in the engine's thread pool;
* ``poem``: ``ctx.generate`` (Claude, or the offline provider), with its own
  output field;
* ``ops_report`` / ``user_directory``: limited to a group / a permission.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, TypedDict

from pydantic import Field

from mcp_tools.tools import SyncToolContext, ToolContext, tool


class Counted(TypedDict):
    count: int
    last: int


@tool(description="Count from 1 to n, one line at a time")
async def count_to(
    ctx: ToolContext,
    n: Annotated[int, Field(ge=1, le=100_000, description="Where to stop")] = 3,
    gate: Annotated[str, Field(description="A FIFO to read a line from after the first number")] = "",
) -> Counted:
    ctx.emit("1\n")
    if gate:
        ctx.emit(await asyncio.to_thread(_read_line, gate))
    for number in range(2, n + 1):
        ctx.emit(f"{number}\n")
    return {"count": n, "last": n}


def _read_line(path: str) -> str:
    with open(path) as fifo:
        return fifo.readline()


class WordStats(TypedDict):
    words: int
    longest: str


@tool(description="Count the words of a text, naming each as it goes (a plain def tool)")
def word_stats(ctx: SyncToolContext, text: Annotated[str, Field(min_length=1)]) -> WordStats:
    words = text.split()
    for word in words:
        ctx.emit(f"{word}\n")
    return {"words": len(words), "longest": max(words, key=len, default="")}


class Poem(TypedDict):
    poem: str
    topic: str
    model: str


@tool(description="A short poem on a topic, written by the LLM as it streams", output_field="poem")
async def poem(ctx: ToolContext, topic: str) -> Poem:
    await ctx.generate(f"Write a four-line poem about {topic}.", max_tokens=200)
    return {"topic": topic, "model": ctx.model}  # type: ignore[typeddict-item]


@tool(description="Only for the ops group", groups=["ops"])
async def ops_report(ctx: ToolContext) -> str:
    return "all systems nominal\n"


@tool(description="Only for users holding auth.view_user", permission="auth.view_user")
async def user_directory(ctx: ToolContext) -> str:
    return f"asked by {ctx.user.get_username()}\n"
