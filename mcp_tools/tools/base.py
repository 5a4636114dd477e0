"""What a tool implementation sees: its parameters and a ``ToolContext``.

A tool is a function ``run(parameters, ctx) -> dict``. It streams its text by
calling ``ctx.generate(request)``, which sends each piece to the client as it
arrives, stops the provider stream if the execution was cancelled or ran out
of time, and records the model and token usage::

    def run(parameters: dict, ctx: ToolContext) -> dict:
        text = ctx.generate(LLMRequest(kind="report", system=..., prompt=..., max_tokens=2000))
        return {"report": text, **ctx.llm_fields()}
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..providers.base import LLMProvider, LLMRequest, Usage


class ExecutionStopped(Exception):
    """The execution was ended elsewhere (cancelled); stop quietly."""


@dataclass
class ToolContext:
    provider: LLMProvider
    # Called with every piece of text; returns False once the execution has ended.
    emit: Callable[[str], bool]
    # Raises (ExecutionTimeout, ...) when the run must stop; called between pieces.
    check: Callable[[], None] = lambda: None
    config: dict[str, Any] = field(default_factory=dict)
    # The execution being run: what a tool waiting on its client's input names (mcp_tools/mcp/inputs.py).
    execution_id: str = ""
    model: str = ""
    usage: Usage = field(default_factory=Usage)

    def generate(self, request: LLMRequest) -> str:
        pieces: list[str] = []
        with self.provider.stream(request) as stream:
            for piece in stream:
                pieces.append(piece)
                if not self.emit(piece):
                    raise ExecutionStopped()
                self.check()
            self.model = stream.model
            self.usage = Usage(stream.usage.input_tokens, stream.usage.output_tokens)
        return "".join(pieces)

    def llm_fields(self) -> dict[str, Any]:
        """``model`` and token ``usage``, as every tool result reports them."""
        return {"model": self.model,
                "usage": {"input_tokens": self.usage.input_tokens, "output_tokens": self.usage.output_tokens}}


ToolFunction = Callable[[dict[str, Any], ToolContext], dict[str, Any]]
