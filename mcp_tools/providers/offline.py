"""A provider that needs no model, no key and no network.

It exists so the whole service (streaming, cancellation, the event log) can be
run and demonstrated without an Anthropic account, and so tests of everything
above the provider are deterministic. It is honest about what it is: the model
is reported as ``"offline"`` and every answer says it was produced without an
LLM. Instead of generating, it *computes* an answer from the request's
``material``:

* ``summarize`` (material: the page's extracted text) - an extractive summary,
  the page's first sentences, up to about 80 words;
* ``report`` (material: any JSON value) - a Markdown report of the data's
  fields: type, value, list lengths, min/max/mean of numeric lists, the keys of
  nested objects;
* ``text`` (any other prompt, e.g. from a project's own tool) - an honest note
  that no LLM is configured, quoting the start of the prompt.

The text is streamed word by word (each piece keeps its trailing whitespace,
so joining the pieces gives back the exact text), optionally paced by
``delay_s`` so a demo looks like a live model.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from .base import LLMRequest, TextStream, Usage

logger = logging.getLogger(__name__)

OFFLINE_MODEL = "offline"
SUMMARY_MAX_WORDS = 80
SUMMARY_MAX_SENTENCES = 5
SUMMARY_HEADER = "Offline summary (no LLM configured; the first sentences of the page):"
REPORT_FOOTER = "_Generated offline from the data alone (no LLM configured)._"
TEXT_HEADER = "Offline answer (no LLM configured). The prompt began:"
TEXT_QUOTE_WORDS = 40
MAX_VALUE_CHARS = 80
MAX_KEYS_SHOWN = 10

# A sentence ends at . ! or ? followed by whitespace; good enough for an extract.
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
# A word plus the whitespace after it, or leading whitespace on its own.
PIECE = re.compile(r"\S+\s*|\s+")


class OfflineProvider:
    """An ``LLMProvider`` that answers deterministically from ``request.material``."""

    name = "offline"

    def __init__(self, *, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s

    @asynccontextmanager
    async def stream(self, request: LLMRequest) -> AsyncIterator[TextStream]:
        text = render(request)
        usage = Usage(input_tokens=len(request.prompt.split()))
        pieces = self._pieces(split_pieces(text), usage)
        try:
            yield TextStream(pieces=pieces, model=OFFLINE_MODEL, usage=usage)
        finally:
            await pieces.aclose()

    async def _pieces(self, pieces: list[str], usage: Usage) -> AsyncGenerator[str, None]:
        for index, piece in enumerate(pieces):
            if index and self.delay_s > 0:
                await asyncio.sleep(self.delay_s)  # pacing for demos, not synchronisation
            usage.output_tokens += 1  # counted as sent, so a cancelled stream is accurate too
            yield piece


def split_pieces(text: str) -> list[str]:
    """Words with their trailing whitespace: ``"".join(split_pieces(t)) == t``."""
    return PIECE.findall(text)


def render(request: LLMRequest) -> str:
    """The full offline answer for a request."""
    if request.kind == "summarize":
        return render_summary(request.material)
    if request.kind == "report":
        return render_report(request.material)
    return render_text(request.prompt)


def render_text(prompt: str) -> str:
    """Any other prompt: say plainly that no model answered, and quote the prompt's start."""
    words = prompt.split()
    quoted = " ".join(words[:TEXT_QUOTE_WORDS]) + (" …" if len(words) > TEXT_QUOTE_WORDS else "")
    return f"{TEXT_HEADER}\n\n> {quoted}\n"


def render_summary(material: Any) -> str:
    """The page's first sentences, at most ``SUMMARY_MAX_WORDS`` words."""
    text = " ".join(str(material or "").split())
    if not text:
        return "Offline summary (no LLM configured): the page has no text to summarize.\n"
    chosen: list[str] = []
    words = 0
    for sentence in SENTENCE_END.split(text)[:SUMMARY_MAX_SENTENCES]:
        count = len(sentence.split())
        if chosen and words + count > SUMMARY_MAX_WORDS:
            break
        chosen.append(sentence)
        words += count
    extract = " ".join(chosen)
    if words > SUMMARY_MAX_WORDS:  # a single very long first sentence: cut it
        extract = " ".join(extract.split()[:SUMMARY_MAX_WORDS]) + " …"
    return f"{SUMMARY_HEADER}\n\n{extract}\n"


def render_report(material: Any) -> str:
    """A Markdown report computed from a JSON value (an object's fields, or one value)."""
    if isinstance(material, dict):
        fields = material
        intro = f"The data has {len(fields)} field{'s' if len(fields) != 1 else ''}."
    else:
        fields = {"value": material}
        intro = f"The data is a single {type_name(material)}, not an object; reported as one field."
    lines = ["# Offline report", "", intro, ""]
    lines += [f"- **{name}** {describe(value)}" for name, value in fields.items()]
    lines += ["", REPORT_FOOTER, ""]
    return "\n".join(lines)


def type_name(value: Any) -> str:
    """JSON's name for a Python value's type."""
    if value is None:
        return "null"
    if isinstance(value, bool):  # before int: bool is a subclass of int
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def describe(value: Any) -> str:
    """``(type): summary`` for one field."""
    kind = type_name(value)
    if kind == "list":
        return describe_list(list(value))
    if kind == "object":
        keys = list(value)
        shown = ", ".join(str(k) for k in keys[:MAX_KEYS_SHOWN])
        more = f", … ({len(keys) - MAX_KEYS_SHOWN} more)" if len(keys) > MAX_KEYS_SHOWN else ""
        return f"(object, {len(keys)} keys): {shown}{more}" if keys else "(object, empty)"
    if kind == "null":
        return "(null)"
    if kind == "number":
        return f"(number): {format_number(value)}"
    return f"({kind}): {short_json(value)}"


def describe_list(items: list[Any]) -> str:
    """Length, and min/max/mean when every item is a number."""
    numbers = [v for v in items if type_name(v) == "number"]
    if items and len(numbers) == len(items):
        mean = sum(numbers) / len(numbers)
        return (
            f"(list of {len(items)} numbers): min {format_number(min(numbers))}, "
            f"max {format_number(max(numbers))}, mean {format_number(mean)}"
        )
    kinds = sorted({type_name(v) for v in items})
    of = f" of {', '.join(kinds)}" if kinds else ""
    return f"(list, {len(items)} item{'s' if len(items) != 1 else ''}{of})"


def format_number(number: float) -> str:
    """Integers as-is, other numbers with up to 6 significant digits."""
    if isinstance(number, int) or float(number).is_integer():
        return str(int(number))
    return f"{number:.6g}"


def short_json(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"
