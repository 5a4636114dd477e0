"""``summarize_content(url)``: fetch a page, extract its main text, summarize it.

Fetching is SSRF-safe and capped (``fetch.py``); extraction uses trafilatura,
so the model reads the article, not the navigation and markup.
"""
from __future__ import annotations

from typing import Any

from ..providers.base import LLMRequest
from .base import ToolContext
from .fetch import extract_main_text, fetch_page

SYSTEM = ("You summarize web pages faithfully and concisely. Lead with the main point, "
          "then the key details, in a few short paragraphs or bullet points.")
MAX_TOKENS = 500
# As the article: the model reads at most this many characters of the page.
MAX_CONTENT_CHARS = 10_000


def run(parameters: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    url = parameters["url"]
    page = fetch_page(
        url,
        max_bytes=ctx.config["FETCH_MAX_BYTES"],
        timeout_s=ctx.config["FETCH_TIMEOUT_S"],
        allow_private=ctx.config["ALLOW_PRIVATE_URLS"],
    )
    content = extract_main_text(page)[:MAX_CONTENT_CHARS]
    ctx.check()
    summary = ctx.generate(LLMRequest(
        kind="summarize", system=SYSTEM, max_tokens=MAX_TOKENS, material=content,
        prompt=f"Summarize this content:\n\n{content}",
    ))
    return {"summary": summary, "url": url, "content_length": len(content), **ctx.llm_fields()}
