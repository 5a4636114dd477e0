"""Tool implementations by name. A tool in gantz.yaml with no entry here is
listed but fails with ``not_implemented`` when run."""
from __future__ import annotations

from . import report, summarize
from .base import ExecutionStopped, ToolContext, ToolFunction

IMPLEMENTATIONS: dict[str, ToolFunction] = {
    "summarize_content": summarize.run,
    "generate_report": report.run,
}

# Which field of a tool's result holds its streamed text (PROTOCOL.md).
STREAMED_FIELD: dict[str, str] = {
    "summarize_content": "summary",
    "generate_report": "report",
}

__all__ = ["IMPLEMENTATIONS", "STREAMED_FIELD", "ExecutionStopped", "ToolContext", "ToolFunction"]
