"""The provider contract: what a tool needs from an LLM.

A provider turns an ``LLMRequest`` into a ``TextStream``: an iterator of text
pieces that also reports the model and token usage once it is exhausted::

    with provider.stream(request) as stream:
        for piece in stream:
            emit(piece)
    stream.usage.output_tokens

Leaving the ``with`` block early (cancellation) closes the underlying HTTP
stream, so an abandoned Claude call stops costing tokens.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

RequestKind = Literal["summarize", "report"]


@dataclass(frozen=True)
class LLMRequest:
    """One prompt. ``kind`` and ``material`` let the offline provider answer
    deterministically without a model (an extractive summary of the text, a
    report computed from the data)."""

    kind: RequestKind
    system: str
    prompt: str
    max_tokens: int
    material: Any = None


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass
class TextStream:
    """Iterate for text pieces; ``model`` and ``usage`` are final once exhausted."""

    pieces: Iterator[str]
    model: str
    usage: Usage = field(default_factory=Usage)

    def __iter__(self) -> Iterator[str]:
        return self.pieces


class LLMProvider(Protocol):
    name: str

    def stream(self, request: LLMRequest) -> AbstractContextManager[TextStream]:
        """Open a streaming completion; the context manager closes it."""
        ...
