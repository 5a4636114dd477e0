"""``generate_report(data)``: a report on a JSON object, written by the LLM."""

from __future__ import annotations

import json
from typing import Annotated, Any, TypedDict

from django.utils import timezone
from pydantic import Field

from .api import tool
from .context import ToolContext

SYSTEM = (
    "You write clear, well-structured reports in Markdown. Describe what the data shows, "
    "point out notable values and patterns, and do not invent facts that are not in the data."
)
MAX_TOKENS = 2000
# The JSON shown to the model is capped so a huge object cannot blow the context.
MAX_DATA_CHARS = 50_000


class TokenUsage(TypedDict):
    input_tokens: int
    output_tokens: int


class Report(TypedDict):
    report: str
    generated_at: str
    model: str
    usage: TokenUsage


@tool(name="generate_report", description="Generate AI report", output_field="report", timeout=120, cacheable=True)
async def generate_report(
    ctx: ToolContext, data: Annotated[dict[str, Any], Field(description="The JSON object to report on")]
) -> Report:
    rendered = json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True)[:MAX_DATA_CHARS]
    report = await ctx.generate(
        f"Generate a detailed report for this data:\n\n{rendered}",
        system=SYSTEM,
        max_tokens=MAX_TOKENS,
        kind="report",
        material=data,
    )
    return {"report": report, "generated_at": timezone.now().isoformat(), **ctx.llm_fields()}  # type: ignore[typeddict-item]
