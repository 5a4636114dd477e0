"""Tools that ask their client first: MCP's multi-round-trip requests (SEP-2322).

A tool may have a *prelude*: a function that looks at the call (its
arguments, the ``inputResponses`` the client sent back, the ``requestState``
it echoed) and either asks for more — an ``InputRequired`` with the requests
(elicitation, sampling, roots) and an optional state — or returns the
parameters to run the tool with. Only then is there an execution::

    @prelude("book_table")
    def ask_for_time(call: Round) -> InputRequired | dict:
        answer = call.response("when")
        if answer is None:
            return InputRequired({"when": elicitation("What time?", {"time": {"type": "string"}})})
        return {**call.arguments, "time": answer["content"]["time"]}

The state a prelude hands out is sealed by the SDK's ``RequestStateBoundary``
(server.py) before it leaves and checked when it comes back, so a prelude
only ever sees state it wrote. A client without the capability a request
needs is asked for nothing it cannot answer: ``call.can("sampling")``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import mcp_types as types

Prelude = Callable[["Round"], "InputRequired | dict[str, Any]"]

PRELUDES: dict[str, Prelude] = {}


def prelude(tool_name: str) -> Callable[[Prelude], Prelude]:
    """Register ``fn`` as the prelude of the tool named ``tool_name``."""

    def register(fn: Prelude) -> Prelude:
        PRELUDES[tool_name] = fn
        return fn

    return register


@dataclass(frozen=True)
class InputRequired:
    """Ask the client for ``requests`` (name -> MCP request) and come back with ``state``."""

    requests: dict[str, Any]  # name -> an MCP request as a dict (the SDK validates it)
    state: str | None = None

    def as_result(self) -> types.InputRequiredResult:
        return types.InputRequiredResult(input_requests=self.requests or None, request_state=self.state)


@dataclass(frozen=True)
class Round:
    """One ``tools/call`` of a multi-round exchange, as a prelude sees it."""

    arguments: dict[str, Any]
    responses: dict[str, Any] = field(default_factory=dict)
    state: str | None = None
    capabilities: types.ClientCapabilities | None = None

    def response(self, name: str) -> dict[str, Any] | None:
        """The client's answer to the request called ``name``, if it sent a usable one."""
        answer = self.responses.get(name)
        return answer if isinstance(answer, dict) else None

    def can(self, capability: str) -> bool:
        """Whether the client declared ``capability`` (``elicitation``, ``sampling``, ``roots``) on this request."""
        return self.capabilities is not None and getattr(self.capabilities, capability, None) is not None


def elicitation(message: str, properties: dict[str, Any]) -> dict[str, Any]:
    """A form elicitation asking for ``properties`` (all required)."""
    return {
        "method": "elicitation/create",
        "params": {
            "mode": "form",
            "message": message,
            "requestedSchema": {"type": "object", "properties": properties, "required": list(properties)},
        },
    }


def sampling(prompt: str, *, max_tokens: int) -> dict[str, Any]:
    return {
        "method": "sampling/createMessage",
        "params": {
            "messages": [{"role": "user", "content": {"type": "text", "text": prompt}}],
            "maxTokens": max_tokens,
        },
    }


def roots() -> dict[str, Any]:
    return {"method": "roots/list", "params": {}}
