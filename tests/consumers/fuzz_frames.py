"""Hypothesis strategies for hostile WebSocket frames.

``frames(limit)`` mixes: arbitrary JSON values; valid messages of every type
with fields deleted, replaced, retyped or added (``mutated_messages``);
corrupted JSON; random text and bytes; frames a few bytes either side of the
size limit; nesting from shallow to far past any recursion limit; and awkward
Unicode (escaped lone surrogates, NUL, BOM, line separators, combining and
astral characters). ``OWN`` in a frame stands for one of the client's own
execution ids; ``with_own_id`` fills it in before sending.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from tests.consumers.fuzz_oracle import CLIENT_TYPES, Frame

# Stands for "the id of one of my own executions"; replaced before sending.
OWN = "<own execution id>"


AWKWARD = [
    "\ud800",
    "\udfff",
    "\x00",
    "\u2028",
    "\ufeff",
    "\U0001d518",
    "e\u0301",
    "\u202e",
    "'",
    '"',
    "\\",
    "\n",
    "💥",
    "ß",
    "İ",
]
texts = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=24),
    st.lists(st.sampled_from(AWKWARD) | st.text(max_size=3), max_size=6).map("".join),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats() | texts,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=12,
)
ids = st.one_of(st.just(OWN), st.just(OWN.upper()), st.uuids().map(str), st.uuids().map(lambda u: u.hex), texts)
FIELDS = ["type", "tool", "parameters", "use_cache", "execution_id", "after_seq", "request_id", "data", "url"]


@st.composite
def templates(draw) -> dict:
    """A valid message of every type."""
    return draw(
        st.sampled_from(
            [
                {"type": "ping"},
                {"type": "list_tools"},
                {"type": "execute", "tool": "generate_report", "parameters": {"data": {"sales": [3, 5, 8]}}},
                {
                    "type": "execute",
                    "tool": "generate_report",
                    "use_cache": False,
                    "parameters": {"data": draw(st.dictionaries(texts, json_values, max_size=4))},
                },
                {"type": "execute", "tool": "summarize_content", "parameters": {"url": draw(texts)}},
                {"type": "subscribe", "execution_id": draw(ids), "after_seq": draw(st.integers(0, 12))},
                {"type": "unsubscribe", "execution_id": draw(ids)},
                {"type": "cancel", "execution_id": draw(ids)},
            ]
        )
    )


@st.composite
def mutated_messages(draw) -> dict:
    """A valid message with 0-3 fields deleted, replaced, retyped or added."""
    message = dict(draw(templates()))
    if draw(st.booleans()):
        message["request_id"] = draw(texts)
    for _ in range(draw(st.integers(0, 3))):
        operation = draw(st.sampled_from(["delete", "set", "type", "parameters"]))
        if operation == "delete" and message:
            del message[draw(st.sampled_from(sorted(message)))]
        elif operation == "set":
            message[draw(st.sampled_from(FIELDS) | texts)] = draw(json_values | ids)
        elif operation == "type":
            message["type"] = draw(
                st.sampled_from(CLIENT_TYPES).map(str.upper) | st.sampled_from(CLIENT_TYPES) | texts | json_values
            )
        else:
            message["parameters"] = draw(
                st.dictionaries(st.sampled_from(["data", "url", "extra"]) | texts, json_values | ids, max_size=3)
                | json_values
            )
    return message


def encode(value: Any, *, ascii_only: bool) -> str:
    text = json.dumps(value, ensure_ascii=False)
    # A real client cannot send a lone surrogate raw (not UTF-8), only escaped.
    if ascii_only or any("\ud800" <= char <= "\udfff" for char in text):
        return json.dumps(value)
    return text


@st.composite
def json_frames(draw) -> Frame:
    value = draw(mutated_messages() | json_values)
    return Frame(text=encode(value, ascii_only=draw(st.booleans())))


@st.composite
def corrupted_frames(draw) -> Frame:
    """Valid JSON with a cut, a stray character or a deleted character."""
    text = json.dumps(draw(templates()))
    at = draw(st.integers(0, len(text)))
    edit = draw(st.sampled_from(["cut", "insert", "delete"]))
    if edit == "cut":
        text = text[:at]
    elif edit == "insert":
        text = text[:at] + draw(st.sampled_from(list('{}[]",:\\') + ["\x00", "NaN", "é"])) + text[at:]
    else:
        text = text[:at] + text[at + 1 :]
    return Frame(text=text)


@st.composite
def near_limit_frames(draw, limit: int) -> Frame:
    """A binary frame, a ping or a report request a few bytes either side of the limit."""
    target = limit + draw(st.integers(-6, 6))
    if draw(st.booleans()):
        return Frame(data=bytes([draw(st.integers(0, 255))]) * target)
    pad_char = draw(st.sampled_from(["x", "é", "€", "😀"]))
    build = draw(
        st.sampled_from(
            [
                lambda pad: {"type": "ping", "pad": pad},
                lambda pad: {
                    "type": "execute",
                    "tool": "generate_report",
                    "use_cache": False,
                    "parameters": {"data": {"pad": pad}},
                },
            ]
        )
    )
    empty = len(json.dumps(build(""), ensure_ascii=False).encode())
    chars = max(0, (target - empty) // len(pad_char.encode()))
    return Frame(text=json.dumps(build(pad_char * chars), ensure_ascii=False))


@st.composite
def deep_frames(draw) -> Frame:
    """Nesting from shallow to far past any recursion limit, bare or inside a message."""
    depth = draw(st.integers(1, 12) | st.integers(300, 1200) | st.integers(5000, 20000))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
    nested = opener * depth + "1" + closer * depth
    where = draw(st.sampled_from(["bare", "ping", "data"]))
    if where == "ping":
        return Frame(text='{"type": "ping", "deep": %s}' % nested)
    if where == "data":
        return Frame(
            text='{"type": "execute", "tool": "generate_report", "use_cache": false, '
            '"parameters": {"data": {"deep": %s}}}' % nested
        )
    return Frame(text=nested)


def frames(limit: int) -> st.SearchStrategy[Frame]:
    return st.one_of(
        json_frames(),
        json_frames(),
        json_frames(),
        corrupted_frames(),
        deep_frames(),
        near_limit_frames(limit),
        st.text(st.characters(codec="utf-8"), max_size=40).map(lambda text: Frame(text=text)),
        st.binary(max_size=64).map(lambda data: Frame(data=data)),
    )


def with_own_id(frame: Frame, execution_id: str) -> Frame:
    if frame.text is None:
        return frame
    return Frame(text=frame.text.replace(OWN, execution_id).replace(OWN.upper(), execution_id.upper()))
