"""Client frames: parsing and field checks, as PROTOCOL.md states them.

``decode_frame(text)`` then ``check_envelope(obj)`` return the message or
raise a ``ServiceError`` with the protocol's code (``invalid_json``,
``invalid_message``, ``unknown_type``). Field readers (``field_str`` …) raise ``invalid_message``
naming the field and what it should be.

The JSON itself is judged by ``mcp_tools/jsonguard.py``, the check the REST
API and the MCP endpoint run too: syntax (with NaN and Infinity) in
``decode_frame``, then content in ``check_envelope`` — numbers out of range
(``1e999``), lone surrogate escapes, U+0000, nesting deeper than
``MCP_JSON_MAX_DEPTH`` — all ``invalid_json``, after the ``request_id`` was
read so the answer can echo it.
"""

from __future__ import annotations

from typing import Any

from mcp_tools import jsonguard
from mcp_tools.errors import InvalidMessage, ServiceError

CLIENT_TYPES = frozenset({"execute", "subscribe", "unsubscribe", "cancel", "list_tools", "ping"})


class InvalidJson(ServiceError):
    code = "invalid_json"
    default_message = "The frame is not valid JSON."


class UnknownType(ServiceError):
    code = "unknown_type"
    default_message = "Unknown message type."


class MessageTooLarge(ServiceError):
    code = "message_too_large"
    default_message = "The message is too large."


_MISSING = object()


def decode_frame(text: str) -> Any:
    try:
        return jsonguard.parse(text)
    except jsonguard.JsonRefused as exc:
        raise InvalidJson(exc.message) from None


def request_id_of(message: Any) -> str | None:
    """The client's request_id, echoed even when the rest of the message is wrong."""
    if isinstance(message, dict) and isinstance(message.get("request_id"), str):
        return message["request_id"]
    return None


def check_envelope(message: Any) -> dict[str, Any]:
    """A dict with a known ``type`` and, if any, a string ``request_id``."""
    try:
        jsonguard.check(message)
    except jsonguard.JsonRefused as exc:
        raise InvalidJson(exc.message) from None
    if not isinstance(message, dict):
        raise InvalidMessage('A message must be a JSON object with a "type".')
    kind = message.get("type")
    if not isinstance(kind, str):
        raise InvalidMessage('The message has no "type" string.')
    if message.get("request_id") is not None and not isinstance(message["request_id"], str):
        raise InvalidMessage('"request_id" must be a string.')
    if kind not in CLIENT_TYPES:
        raise UnknownType(f"Unknown message type {kind!r}; expected one of {', '.join(sorted(CLIENT_TYPES))}.")
    return message


def field_str(message: dict, name: str) -> str:
    value = message.get(name, _MISSING)
    if value is _MISSING:
        raise InvalidMessage(f'"{name}" is required.')
    if not isinstance(value, str) or not value:
        raise InvalidMessage(f'"{name}" must be a non-empty string.')
    return value


def field_optional_str(message: dict, name: str) -> str | None:
    value = message.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidMessage(f'"{name}" must be a non-empty string when given.')
    return value


def field_object(message: dict, name: str, default: dict) -> dict:
    value = message.get(name, default)
    if not isinstance(value, dict):
        raise InvalidMessage(f'"{name}" must be an object.')
    return value


def field_bool(message: dict, name: str, default: bool) -> bool:
    value = message.get(name, default)
    if not isinstance(value, bool):
        raise InvalidMessage(f'"{name}" must be true or false.')
    return value


def field_seq(message: dict, name: str) -> int:
    value = message.get(name, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidMessage(f'"{name}" must be an integer >= 0.')
    return value
