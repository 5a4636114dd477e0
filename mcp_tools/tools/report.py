"""``generate_report(data)``: a report on a JSON object, written by the LLM."""
from __future__ import annotations

import json
from typing import Any

from django.utils import timezone

from ..providers.base import LLMRequest
from .base import ToolContext

SYSTEM = ("You write clear, well-structured reports in Markdown. Describe what the data shows, "
          "point out notable values and patterns, and do not invent facts that are not in the data.")
MAX_TOKENS = 2000
# The JSON shown to the model is capped so a huge object cannot blow the context.
MAX_DATA_CHARS = 50_000


def run(parameters: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    data = parameters["data"]
    rendered = json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True)[:MAX_DATA_CHARS]
    report = ctx.generate(LLMRequest(
        kind="report", system=SYSTEM, max_tokens=MAX_TOKENS, material=data,
        prompt=f"Generate a detailed report for this data:\n\n{rendered}",
    ))
    return {"report": report, "generated_at": timezone.now().isoformat(), **ctx.llm_fields()}
