"""What PROTOCOL.md allows as the answer to a frame: the fuzz test's oracle.

``expected_outcomes(frame, world)`` reads the frame the way the contract
describes it — size, then text or binary, then JSON, then the envelope, then
the fields of its ``type`` — and returns every answer that would be honest:
``"error:<code>"`` for each problem the frame really has (a server may report
whichever it finds first), or the answer to a valid message (``"pong"``,
``"tools"``, ``"execution.accepted"``, ``"subscribed"``, ``"unsubscribed"``, or
``"silence"`` for cancelling an execution that has already ended)::

    expected_outcomes(Frame(text='{"type": "subscribe", "execution_id": 7}'), world)
    # {"error:invalid_message"}

It knows nothing of the implementation beyond the tools' JSON Schemas and the
ids of the client's own (ended) executions, kept in ``World``.
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator

CLIENT_TYPES = ("execute", "subscribe", "unsubscribe", "cancel", "list_tools", "ping")
_MISSING = object()


@dataclass
class World:
    """What the oracle needs to know: the limit, the tools, my ended executions."""

    limit: int
    schemas: dict[str, dict]
    max_depth: int = 64  # MCP_JSON_MAX_DEPTH: deeper frames may be refused (docs/protocol.md, extensions)
    own: dict[str, int] = field(default_factory=dict)  # execution id -> its last seq

    def __repr__(self) -> str:  # short, for Hypothesis' failure reports
        return f"World(limit={self.limit}, tools={sorted(self.schemas)}, own={len(self.own)} executions)"


@dataclass(frozen=True)
class Frame:
    text: str | None = None
    data: bytes | None = None

    def size(self) -> int:
        return len(self.data) if self.data is not None else len(self.text.encode())


def expected_outcomes(frame: Frame, world: World) -> set[str]:
    """Every answer PROTOCOL.md allows for ``frame``: ``error:<code>`` or an answer type."""
    if frame.size() > world.limit:
        # A binary frame over the limit is wrong twice; either answer is honest.
        return {"error:message_too_large"} | ({"error:invalid_message"} if frame.data is not None else set())
    if frame.data is not None:
        return {"error:invalid_message"}
    try:
        message = json.loads(frame.text)
    except (ValueError, RecursionError):
        return {"error:invalid_json"}
    allowed = message_outcomes(message, world)
    if not_interoperable(frame.text, message, world.max_depth):
        # NaN and Infinity are not JSON, a lone surrogate is not Unicode (RFC
        # 8259, section 8.2), 1e999 is no number a client can read back, U+0000
        # no database stores, and the depth limit is documented: refusing them
        # is as right as taking them.
        allowed |= {"error:invalid_json", "error:invalid_message", "error:invalid_parameters"}
    return allowed


def _refuse_constant(constant: str) -> Any:
    raise ValueError(constant)


def not_interoperable(text: str, value: Any, max_depth: int) -> bool:
    """Whether the frame holds NaN / Infinity, a number out of range, an escaped lone
    surrogate or U+0000, or nests deeper than ``max_depth``."""

    def refuse(constant: str) -> Any:
        raise ValueError(constant)

    try:
        json.loads(text, parse_constant=refuse)
    except ValueError:
        return True
    return _has_unstorable(value, max_depth)


def _has_unstorable(value: Any, max_depth: int) -> bool:
    pending = [(value, 1)]  # iterative: frames may nest deeper than Python recurses
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str) and any("\ud800" <= char <= "\udfff" or char == "\x00" for char in item):
            return True
        if isinstance(item, float) and not math.isfinite(item):
            return True
        if isinstance(item, (dict, list)) and depth > max_depth:
            return True
        if isinstance(item, dict):
            pending.extend((key, depth) for key in item)
            pending.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            pending.extend((child, depth + 1) for child in item)
    return False


def message_outcomes(message: Any, world: World) -> set[str]:
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        return {"error:invalid_message"}
    problems = set()
    if message.get("request_id") is not None and not isinstance(message["request_id"], str):
        problems.add("error:invalid_message")
    if message["type"] not in CLIENT_TYPES:
        return problems | {"error:unknown_type"}
    outcomes = RULES[message["type"]](message, world)
    if problems:  # a valid answer is ruled out, any real problem may be the one reported
        return problems | {o for o in outcomes if o.startswith("error:")}
    return outcomes


def _execute_outcomes(message: dict, world: World) -> set[str]:
    errors = set()
    tool, parameters = message.get("tool", _MISSING), message.get("parameters", {})
    if not isinstance(tool, str) or not tool:
        errors.add("error:invalid_message")
    if not isinstance(parameters, dict) or not isinstance(message.get("use_cache", True), bool):
        errors.add("error:invalid_message")
    if isinstance(tool, str) and tool and tool not in world.schemas:
        errors.add("error:unknown_tool")
    elif (
        isinstance(tool, str)
        and tool in world.schemas
        and isinstance(parameters, dict)
        and next(Draft202012Validator(world.schemas[tool]).iter_errors(parameters), None) is not None
    ):
        errors.add("error:invalid_parameters")
    return errors or {"execution.accepted"}


def _own_id(value: Any, world: World) -> str | None:
    """The own execution ``value`` names, in any spelling of its UUID."""
    try:
        key = str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError):
        return None
    return key if key in world.own else None


def _id_outcomes(message: dict, world: World, found: set[str]) -> set[str]:
    """subscribe / unsubscribe / cancel: the id's answer, or the field errors."""
    execution_id = message.get("execution_id", _MISSING)
    errors = set()
    if not isinstance(execution_id, str) or not execution_id:
        errors.add("error:invalid_message")
    if message["type"] == "subscribe":
        after_seq = message.get("after_seq", 0)
        if isinstance(after_seq, bool) or not isinstance(after_seq, int) or after_seq < 0:
            errors.add("error:invalid_message")
    own = _own_id(execution_id, world) if isinstance(execution_id, str) else None
    if isinstance(execution_id, str) and execution_id and own is None:
        errors.add("error:not_found")
    if errors:
        return errors
    # Another spelling of a known id: answering not_found is not wrong either.
    return found | (set() if execution_id == own else {"error:not_found"})


RULES = {
    "ping": lambda message, world: {"pong"},
    "list_tools": lambda message, world: {"tools"},
    "execute": _execute_outcomes,
    "subscribe": lambda message, world: _id_outcomes(message, world, {"subscribed"}),
    "unsubscribe": lambda message, world: _id_outcomes(message, world, {"unsubscribed"}),
    # Cancelling an execution that has already ended: nothing changes, nothing is sent.
    "cancel": lambda message, world: _id_outcomes(message, world, {"silence"}),
}


def sent_request_id(frame: Frame, world: World) -> str | None:
    """The request_id an answer must echo: a string one in a frame the server could read."""
    if frame.data is not None or frame.size() > world.limit:
        return None
    try:
        # NaN / Infinity make the frame invalid JSON to the server: nothing to echo.
        message = json.loads(frame.text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        return None
    if isinstance(message, dict) and isinstance(message.get("request_id"), str):
        return message["request_id"]
    return None
