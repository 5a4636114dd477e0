"""``summarize_content(url)``: fetch a page, extract its main text, summarize it.

Fetching is SSRF-safe and capped (``fetch.py``); extraction uses trafilatura
(in a thread: it is CPU work), so the model reads the article, not the
navigation and markup.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, TypedDict

from django.conf import settings
from pydantic import Field

from ..fetch import extract_main_text, fetch_page_async
from .api import tool
from .context import ToolContext
from .report import TokenUsage

SYSTEM = (
    "You summarize web pages faithfully and concisely. Lead with the main point, "
    "then the key details, in a few short paragraphs or bullet points."
)
MAX_TOKENS = 500
# As the article: the model reads at most this many characters of the page.
MAX_CONTENT_CHARS = 10_000


class Summary(TypedDict):
    summary: str
    url: str
    content_length: int
    model: str
    usage: TokenUsage


@tool(name="summarize_content", description="Summarize web content", output_field="summary", timeout=60, cacheable=True)
async def summarize_content(
    ctx: ToolContext, url: Annotated[str, Field(description="The http(s) address of the page to summarize")]
) -> Summary:
    config = settings.MCP_CONFIG
    page = await fetch_page_async(
        url,
        max_bytes=config["FETCH_MAX_BYTES"],
        timeout_s=config["FETCH_TIMEOUT_S"],
        allow_private=config["ALLOW_PRIVATE_URLS"],
    )
    content = (await asyncio.to_thread(extract_main_text, page))[:MAX_CONTENT_CHARS]
    ctx.check()
    summary = await ctx.generate(
        f"Summarize this content:\n\n{content}",
        system=SYSTEM,
        max_tokens=MAX_TOKENS,
        kind="summarize",
        material=content,
    )
    return {"summary": summary, "url": url, "content_length": len(content), **ctx.llm_fields()}  # type: ignore[typeddict-item]
