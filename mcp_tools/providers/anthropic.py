"""Claude through the official ``anthropic`` SDK, streamed piece by piece.

How a streamed Messages call unfolds (server-sent events)::

    message_start        -> the model's name and usage.input_tokens
    content_block_delta  -> one text piece each (what the user sees appear)
    message_delta        -> usage.output_tokens, cumulative so far
    message_stop

Errors arrive in two places, and both are translated into our hierarchy
(``mcp_tools.errors``), because the retry policy only understands that:

* when the stream opens: an HTTP error status (``APIStatusError``) or a
  connection failure (``APIConnectionError`` / ``APITimeoutError``);
* while iterating, *unwrapped*: an ``event: error`` in the stream becomes an
  ``APIStatusError`` with ``status_code == 200`` (its ``.type`` says what went
  wrong), a dropped connection an ``httpx2.RemoteProtocolError``, a stall an
  ``httpx2.ReadTimeout``.

The SDK client (``AsyncAnthropic``: a worker process streams many calls on
one event loop) is built with ``max_retries=0``: our own retry policy
announces every retry to the user, so the SDK must not retry silently
underneath it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import anthropic
import httpx2

from mcp_tools.errors import PermanentToolError, ToolError, TransientToolError

from .base import LLMRequest, TextStream

logger = logging.getLogger(__name__)

# Statuses worth retrying: timeout, conflict, rate limit, server errors (529 = overloaded).
TRANSIENT_STATUSES = frozenset({408, 409, 429})
# Mid-stream error types worth retrying; anything else in an error event is final.
TRANSIENT_STREAM_ERROR_TYPES = frozenset({"overloaded_error", "api_error"})
MAX_DETAIL_CHARS = 200
TRANSIENT_WORDING = {
    "llm_rate_limited": "Claude's rate limit was reached",
    "llm_overloaded": "Claude is overloaded",
    "llm_unavailable": "Claude is temporarily unavailable",
}


class AnthropicProvider:
    """An ``LLMProvider`` backed by the Anthropic Messages API."""

    name = "anthropic"

    def __init__(self, *, api_key: str, base_url: str | None = None, model: str, timeout_s: float = 60.0) -> None:
        self.model = model
        self.timeout_s = timeout_s
        self._api_key = api_key  # kept only to scrub it from error messages
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key, base_url=base_url or None, max_retries=0, timeout=timeout_s
        )

    def __repr__(self) -> str:
        # Never show the key, not even in a debugger or a log line.
        return f"AnthropicProvider(model={self.model!r}, base_url={str(self._client.base_url)!r})"

    @asynccontextmanager
    async def stream(self, request: LLMRequest) -> AsyncIterator[TextStream]:
        """Open the HTTP stream; leaving the block closes it, finished or not."""
        # The raw event stream, not ``messages.stream()``: that helper also builds a
        # snapshot of the whole message on every event (docs/benchmarks.md); ``_pieces``
        # reads the raw events.
        with translate_errors(self._api_key):
            sdk_stream = await self._client.messages.create(**self._call_arguments(request), stream=True)
        text_stream = TextStream(pieces=_empty(), model=self.model)
        pieces = self._pieces(sdk_stream, text_stream)
        text_stream.pieces = pieces
        try:
            yield text_stream
        finally:
            await pieces.aclose()
            # Closing the response stops generation server-side: no more tokens billed.
            await sdk_stream.close()

    def _call_arguments(self, request: LLMRequest) -> dict[str, Any]:
        arguments: dict[str, Any] = {
            "model": self.model,
            "max_tokens": request.max_tokens,
            "messages": [{"role": "user", "content": request.prompt}],
        }
        if request.system:  # an empty system prompt is better left out than sent
            arguments["system"] = request.system
        return arguments

    async def _pieces(self, sdk_stream: Any, out: TextStream) -> AsyncGenerator[str, None]:
        """Yield text deltas; record model and usage from the events that carry them, as they come.

        Reads the SDK's raw server-sent events (``AsyncStream.raw_events``) and
        parses only the JSON it needs: iterating ``sdk_stream`` itself builds a
        typed event object per token (docs/benchmarks.md). Errors are the SDK's
        own: an ``event: error`` raises ``APIStatusError`` as the SDK would.
        """
        response = sdk_stream.response
        with translate_errors(self._api_key):
            async for sse in anthropic.AsyncStream.raw_events(response):
                kind = sse.event
                if kind == "content_block_delta":
                    delta = json.loads(sse.data)["delta"]
                    if delta.get("type") == "text_delta":
                        yield delta["text"]
                elif kind == "message_delta":
                    # Cumulative, so the last one is the total.
                    out.usage.output_tokens = json.loads(sse.data)["usage"]["output_tokens"]
                elif kind == "message_start":
                    message = json.loads(sse.data)["message"]
                    out.model = message.get("model") or out.model
                    out.usage.input_tokens = message["usage"]["input_tokens"]
                    # Reported so far (usually 1); a stream that breaks off keeps what was reported.
                    out.usage.output_tokens = message["usage"].get("output_tokens", 0)
                elif kind == "error":
                    body = _json_or_text(sse.data)
                    raise anthropic.APIStatusError(f"{body}", response=response, body=body)


async def _empty() -> AsyncIterator[str]:
    return
    yield  # an async generator that yields nothing


def _json_or_text(data: str) -> object:
    try:
        return json.loads(data)
    except ValueError:
        return data


@contextmanager
def translate_errors(api_key: str) -> Iterator[None]:
    """Re-raise SDK and transport errors as ``TransientToolError`` / ``PermanentToolError``."""
    try:
        yield
    except anthropic.APIStatusError as exc:
        raise _logged(status_error(exc, api_key)) from exc
    except (anthropic.APIConnectionError, httpx2.TransportError) as exc:
        # APITimeoutError is an APIConnectionError; ReadTimeout / RemoteProtocolError
        # are TransportErrors that escape the SDK unwrapped once the stream is open.
        raise _logged(
            TransientToolError("The connection to Claude was interrupted.", code="llm_stream_interrupted")
        ) from exc
    except (anthropic.APIResponseValidationError, ValueError, KeyError, TypeError) as exc:
        # ValueError, KeyError, TypeError: an event's JSON was not what the Messages API sends (``_pieces``).
        raise _logged(
            PermanentToolError("Claude returned a response that could not be understood.", code="llm_error")
        ) from exc


def status_error(exc: anthropic.APIStatusError, api_key: str) -> ToolError:
    """Classify an error status (or a mid-stream error event) by retryability."""
    status, kind = exc.status_code, exc.type
    detail = _detail(exc, api_key)
    if status == 200:  # an ``event: error`` inside an open stream
        error_class = TransientToolError if kind in TRANSIENT_STREAM_ERROR_TYPES else PermanentToolError
        code = _transient_code(status, kind) if error_class is TransientToolError else "llm_error"
        return error_class(f"Claude stopped mid-answer ({kind or 'error'}){detail}", code=code)
    if status in TRANSIENT_STATUSES or status >= 500:
        code = _transient_code(status, kind)
        return TransientToolError(
            f"{TRANSIENT_WORDING[code]} (HTTP {status}){detail}", code=code, retry_after=parse_retry_after(exc.response)
        )
    if status in (401, 403):
        return PermanentToolError(f"Claude rejected the API credentials (HTTP {status}).", code="llm_auth_failed")
    return PermanentToolError(f"Claude rejected the request (HTTP {status}){detail}", code="llm_error")


def _transient_code(status: int, kind: str | None) -> str:
    if status == 429:
        return "llm_rate_limited"
    if status == 529 or kind == "overloaded_error":
        return "llm_overloaded"
    return "llm_unavailable"


def _detail(exc: anthropic.APIStatusError, api_key: str) -> str:
    """The API's own short explanation, trimmed and scrubbed of the key."""
    message = (exc.api_message or "").strip()
    if not message:
        return "."
    if api_key:
        message = message.replace(api_key, "[redacted]")
    if len(message) > MAX_DETAIL_CHARS:
        message = message[: MAX_DETAIL_CHARS - 1] + "…"
    return f": {message}"


def parse_retry_after(response: httpx2.Response | None) -> float | None:
    """Seconds from a ``retry-after`` header (a number or an HTTP date), else None."""
    value = response.headers.get("retry-after") if response is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _logged(error: ToolError) -> ToolError:
    logger.info("Claude call failed: %s (%s)", error.code, error.message)
    return error
