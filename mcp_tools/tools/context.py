"""What a running tool sees: ``ToolContext`` (async tools) and ``SyncToolContext`` (plain functions).

The engine builds one per attempt and hands it to the tool as its first
argument. Everything a tool does towards the client goes through it::

    ctx.emit("Counting…\\n")                                   # stream text now
    summary = await ctx.generate("Summarize: ...", kind="summarize", material=text)   # Claude, streamed
    ctx.check()                                                # raises if cancelled or out of time
    ctx.user, ctx.execution_id, ctx.attempt                    # who and which run

The text a tool emits — by ``emit`` or by ``generate`` — is its streamed
output: the joined deltas, and the result's ``output_field``. Emitting past
the output cap (``MCP_MAX_OUTPUT_BYTES``, counted as the JSON the text travels
in: ``json_size``) ends the run with ``output_too_large`` after the part that
fits, which the failed execution keeps as its ``result`` (``{output_field:
text}``). A synchronous tool runs in a thread of the engine's pool; its context
forwards every call to the engine's event loop.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from ..errors import ExecutionStopped, PermanentToolError
from ..providers import LLMProvider, LLMRequest, Usage
from ..providers.base import RequestKind

# The defaults of ``generate``: a tool that wants more says so.
GENERATE_MAX_TOKENS = 1024


def json_size(text: str) -> int:
    """The bytes ``text`` takes inside the JSON this service sends (``json.dumps``: ASCII, escaped).

    What the output cap counts: a terminal event repeats the whole output in
    its ``result``, and it must fit one WebSocket message (daphne refuses to
    send more than 1 MiB, and closes the connection). Counted as UTF-8 bytes,
    a 1 MiB cap let a result of 1 MiB, or of 200 KB of accented text (6 bytes
    a character escaped), become a message that could never be delivered."""
    return len(json.dumps(text)) - 2


def _prefix_within(text: str, budget: int) -> str:
    """The longest start of ``text`` whose ``json_size`` is at most ``budget``."""
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if json_size(text[:middle]) <= budget:
            low = middle
        else:
            high = middle - 1
    return text[:low]


class ToolContext:
    def __init__(
        self,
        *,
        execution_id: str,
        attempt: int,
        user: Any,
        provider: LLMProvider,
        send_text: Callable[[str], None],
        output_limit_bytes: int,
        output_field: str = "output",
    ) -> None:
        self.execution_id = execution_id
        self.attempt = attempt
        self.user = user
        self.provider = provider
        self.model = ""
        self.usage = Usage()
        self.pieces: list[str] = []
        self._send_text = send_text
        self._limit = output_limit_bytes
        self._output_field = output_field
        self._bytes = 0
        self._stop_reason: str | None = None

    # --- Streaming.

    def emit(self, text: str) -> None:
        """Stream ``text`` to the client (coalesced with what follows)."""
        self.check()
        if not text:
            return
        size = json_size(text)
        if self._bytes + size > self._limit:
            fitting = _prefix_within(text, self._limit - self._bytes)
            if fitting:
                self._accept(fitting, json_size(fitting))
            raise PermanentToolError(
                f"The tool wrote more than {self._limit} bytes of output (as JSON); it was stopped there.",
                code="output_too_large",
                result={self._output_field: self.text},
            )
        self._accept(text, size)

    def _accept(self, text: str, size: int) -> None:
        self.pieces.append(text)
        self._bytes += size
        self._send_text(text)

    @property
    def text(self) -> str:
        """Everything this attempt emitted so far."""
        return "".join(self.pieces)

    async def generate(
        self,
        prompt: str,
        *,
        system: str = "",
        max_tokens: int = GENERATE_MAX_TOKENS,
        kind: RequestKind = "text",
        material: Any = None,
    ) -> str:
        """Ask the configured LLM, streaming its answer to the client as it is written; returns the answer.

        ``kind``/``material`` let the offline provider compute a real answer
        (``"summarize"`` a text, ``"report"`` on a JSON value); any other
        prompt gets an honest "no LLM configured" answer offline.
        """
        request = LLMRequest(
            kind=kind,
            system=system,
            prompt=prompt,
            max_tokens=max_tokens,
            material=material,
        )
        pieces: list[str] = []
        spent = Usage()
        try:
            async with self.provider.stream(request) as stream:
                spent = stream.usage
                async for piece in stream:
                    pieces.append(piece)
                    self.emit(piece)
                self.model = stream.model
        finally:
            self.usage.add(spent)  # what the provider reported, also when the stream broke off
        return "".join(pieces)

    def llm_fields(self) -> dict[str, Any]:
        """``model`` and token ``usage``, as the project's LLM tools report them."""
        return {
            "model": self.model,
            "usage": {"input_tokens": self.usage.input_tokens, "output_tokens": self.usage.output_tokens},
        }

    # --- Stopping.

    def stop(self, reason: str) -> None:
        """Called by the engine: the run must stop (cancelled, out of time, ended elsewhere)."""
        self._stop_reason = self._stop_reason or reason

    @property
    def cancelled(self) -> bool:
        """True once the run should stop; a long computation checks it between steps."""
        return self._stop_reason is not None

    def check(self) -> None:
        """Raise if the run should stop (the engine then ends it the right way)."""
        if self._stop_reason is not None:
            raise ExecutionStopped(self._stop_reason)


class SyncToolContext:
    """The same context for a synchronous tool, running in a thread of the engine's pool."""

    def __init__(self, context: ToolContext, loop: asyncio.AbstractEventLoop) -> None:
        self._context = context
        self._loop = loop
        self.execution_id = context.execution_id
        self.attempt = context.attempt
        self.user = context.user

    def emit(self, text: str) -> None:
        self._context.check()
        asyncio.run_coroutine_threadsafe(self._emit(text), self._loop).result()

    async def _emit(self, text: str) -> None:
        self._context.emit(text)

    def generate(self, prompt: str, **options: Any) -> str:
        return asyncio.run_coroutine_threadsafe(self._context.generate(prompt, **options), self._loop).result()

    def llm_fields(self) -> dict[str, Any]:
        return self._context.llm_fields()

    @property
    def cancelled(self) -> bool:
        return self._context.cancelled

    def check(self) -> None:
        self._context.check()
