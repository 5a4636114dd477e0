"""The provider contract: what a tool needs from an LLM.

A provider turns an ``LLMRequest`` into a ``TextStream``: an async iterator of
text pieces that also reports the model and the token usage — updated as the
provider reports it, so a run that is cancelled or fails midway still knows
what it spent::

    async with provider.stream(request) as stream:
        async for piece in stream:
            emit(piece)
    stream.usage.output_tokens

Leaving the ``async with`` block early (cancellation) closes the underlying
HTTP stream, so an abandoned Claude call stops costing tokens.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

# "summarize" and "report" let the offline provider compute an answer; "text" is any other prompt.
RequestKind = Literal["summarize", "report", "text"]


@dataclass(frozen=True)
class LLMRequest:
    """One prompt. ``kind`` and ``material`` let the offline provider answer
    deterministically without a model (an extractive summary of the text, a
    report computed from the data, an honest echo of any other prompt)."""

    kind: RequestKind
    system: str
    prompt: str
    max_tokens: int
    material: Any = None


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0

    def add(self, other: Usage) -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens


@dataclass
class TextStream:
    """Iterate for text pieces; ``model`` and ``usage`` follow what the provider reported so far."""

    pieces: AsyncIterator[str]
    model: str
    usage: Usage = field(default_factory=Usage)

    def __aiter__(self) -> AsyncIterator[str]:
        return self.pieces


class LLMProvider(Protocol):
    name: str

    def stream(self, request: LLMRequest) -> AbstractAsyncContextManager[TextStream]:
        """Open a streaming completion; the context manager closes it."""
        ...
