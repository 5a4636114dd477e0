"""Fuzzing ``/ws/executions/``: hostile frames get documented answers, and the connection lives on.

Hypothesis throws frames at the real ASGI application (embedded default,
through ``WebsocketCommunicator``): arbitrary JSON values; valid messages with
fields deleted, retyped or replaced; corrupted JSON; random text and bytes;
frames a few bytes either side of the size limit; deep nesting; and awkward
Unicode (escaped lone surrogates, NUL, BOM, line separators, combining and
astral characters).

For every frame, ``expected_outcomes`` works out from PROTOCOL.md alone which
answers are allowed: an ``error`` whose code names a problem the frame really
has, or the documented answer to a valid message::

    '{"type": "subscribe", "execution_id": 7}'   ->  {"error:invalid_message"}
    '{"type": "ping", "request_id": "a"}'        ->  {"pong"}

The test checks the answer it got (and what follows it: an execution's events
up to its one terminal event, a subscription's replay), then that ``ping``
still gets ``pong``: on the same connection, or — after
``message_too_large``, the only error allowed to close it, with 4009 — on a
new one.
"""

from __future__ import annotations

import json

import pytest
from channels.testing import WebsocketCommunicator
from hypothesis import HealthCheck, event, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from mcp_tools.models import Tool
from tests.conftest import HOST, ORIGIN, TERMINAL, assert_contiguous, streamed_text
from tests.consumers.fuzz_frames import OWN, frames, with_own_id
from tests.consumers.fuzz_oracle import Frame, World, expected_outcomes, sent_request_id

pytestmark = pytest.mark.django_db(transaction=True)

STREAMED_FIELD = {"summarize_content": "summary", "generate_report": "report"}
ANSWER_TIMEOUT_S = 10
EXECUTION_TIMEOUT_S = 30


# --- Talking to the server -------------------------------------------------------


async def open_connection(user) -> WebsocketCommunicator:
    from config.asgi import application

    comm = WebsocketCommunicator(
        application,
        "/ws/executions/",
        headers=[ORIGIN, HOST, (b"authorization", f"Token {user.auth_token.key}".encode())],
    )
    connected, _ = await comm.connect(timeout=ANSWER_TIMEOUT_S)
    assert connected
    return comm


async def next_frame(comm: WebsocketCommunicator, timeout: float = ANSWER_TIMEOUT_S) -> dict:
    output = await comm.receive_output(timeout)
    assert output["type"] == "websocket.send", f"expected a frame, got {output}"
    assert output.get("text") is not None, f"the server sent a binary frame: {output}"
    return json.loads(output["text"])


async def send_frame(comm: WebsocketCommunicator, frame: Frame) -> None:
    # send_input, not send_to: send_to refuses empty frames, which clients can send.
    if frame.data is not None:
        await comm.send_input({"type": "websocket.receive", "bytes": frame.data})
    else:
        await comm.send_input({"type": "websocket.receive", "text": frame.text})


async def assert_alive(comm: WebsocketCommunicator) -> None:
    """ping gets pong, and nothing else came first (no stray or late answer)."""
    await comm.send_to(text_data=json.dumps({"type": "ping", "request_id": "probe"}))
    assert await next_frame(comm) == {"type": "pong", "request_id": "probe"}


async def run_to_the_end(comm: WebsocketCommunicator, accepted: dict, world: World) -> None:
    """An accepted execution's events: contiguous, one terminal event, last."""
    events = []
    while not events or events[-1]["type"] not in TERMINAL:
        event = await next_frame(comm, EXECUTION_TIMEOUT_S)
        assert event.get("execution_id") == accepted["execution_id"], event
        events.append(event)
    assert_contiguous(events)
    assert events[0]["status"] == "pending"
    if events[-1]["type"] == "execution.completed":
        assert streamed_text(events) == events[-1]["result"][STREAMED_FIELD[accepted["tool"]]]
    else:
        assert events[-1]["type"] == "execution.failed" and events[-1]["error"]["message"], events[-1]
    world.own[accepted["execution_id"]] = events[-1]["seq"]


async def check_answer(comm, frame: Frame, sent: dict | None, world: World) -> str:
    """Read the answer to ``frame`` and what follows it; returns the outcome seen."""
    allowed = expected_outcomes(frame, world)
    request_id = sent_request_id(frame, world)
    if "silence" in allowed:
        # Nothing may come: a ping sent now must be the next thing answered.
        await comm.send_to(text_data=json.dumps({"type": "ping", "request_id": "probe"}))
    answer = await next_frame(comm)
    if "silence" in allowed and answer == {"type": "pong", "request_id": "probe"}:
        return "silence"
    outcome = f"error:{answer.get('code')}" if answer["type"] == "error" else answer["type"]
    assert outcome in allowed, f"answer {answer!r} to {frame!r}; allowed: {sorted(allowed)}"
    if outcome != "error:message_too_large":  # a frame over the limit is not read at all
        assert answer.get("request_id") == request_id, (answer, request_id)
    if answer["type"] == "error":
        assert isinstance(answer.get("message"), str) and answer["message"], answer
    elif outcome == "execution.accepted":
        assert answer["seq"] == 0 and answer["status"] == "pending" and answer["tool"] == sent["tool"], answer
        await run_to_the_end(comm, answer, world)
    elif outcome == "subscribed":
        await check_replay(comm, answer, sent, world)
    elif outcome == "tools":
        assert sorted(tool["name"] for tool in answer["tools"]) == sorted(world.schemas), answer
    if "silence" in allowed:
        assert await next_frame(comm) == {"type": "pong", "request_id": "probe"}
    return outcome


async def check_replay(comm, subscribed: dict, sent: dict, world: World) -> None:
    last_seq = world.own[subscribed["execution_id"]]
    assert subscribed["last_seq"] == last_seq, subscribed
    after_seq = sent.get("after_seq", 0)
    for seq in range(after_seq + 1, last_seq + 1):
        event = await next_frame(comm)
        assert (event.get("execution_id"), event.get("seq")) == (subscribed["execution_id"], seq), event


# --- The test ------------------------------------------------------------------------


@pytest.fixture
def world(tools, settings) -> World:
    # Valid executes must be answered as valid, not rate-limited: the limits have tests of their own.
    settings.MCP_CONFIG = {
        **settings.MCP_CONFIG,
        "RATE_LIMIT_PER_MINUTE": 1_000_000,
        "MAX_CONCURRENT_EXECUTIONS": 1_000_000,
        "FETCH_TIMEOUT_S": 2.0,
    }
    schemas = {tool.name: tool.parameters_schema for tool in Tool.objects.filter(is_active=True)}
    return World(
        limit=settings.MCP_CONFIG["WS_MAX_MESSAGE_BYTES"],
        schemas=schemas,
        max_depth=settings.MCP_CONFIG["JSON_MAX_DEPTH"],
    )


async def ensure_own_execution(user, world: World) -> str:
    """One ended execution of mine, for subscribe / unsubscribe / cancel to name."""
    if not world.own:
        comm = await open_connection(user)
        try:
            await comm.send_to(
                text_data=json.dumps(
                    {
                        "type": "execute",
                        "tool": "generate_report",
                        "parameters": {"data": {"seed": 1}},
                        "use_cache": False,
                    }
                )
            )
            accepted = await next_frame(comm)
            await run_to_the_end(comm, accepted, world)
        finally:
            await comm.disconnect()
    return next(iter(world.own))


def _parsed(frame: Frame) -> dict | None:
    try:
        message = json.loads(frame.text) if frame.text is not None else None
    except (ValueError, RecursionError):
        return None
    return message if isinstance(message, dict) else None


@hypothesis_settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[
        # The user, the tools and the world are meant to live across examples; each
        # example opens (and closes) its own connection.
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
@given(data=st.data())
async def test_any_frame_gets_a_documented_answer_and_the_connection_keeps_working(data, alice, world):
    own_id = await ensure_own_execution(alice, world)
    frame = with_own_id(data.draw(frames(world.limit), label="frame"), own_id)
    comm = await open_connection(alice)
    try:
        await send_frame(comm, frame)
        outcome = await check_answer(comm, frame, _parsed(frame), world)
        event(outcome)  # --hypothesis-show-statistics tells how often each answer came
        if outcome == "error:message_too_large":
            assert await comm.receive_output(ANSWER_TIMEOUT_S) == {"type": "websocket.close", "code": 4009}
            await comm.disconnect()
            comm = await open_connection(alice)
        await assert_alive(comm)
    finally:
        await comm.disconnect()


# Frames worth trying on every run, whatever Hypothesis draws: each once found
# a problem here or sits on an edge of the protocol.
KNOWN_HOSTILE = [
    '{"type": "execute", "tool": "generate_report", "parameters": {"data": {"k": "\\ud800"}}}',
    '{"type": "execute", "tool": "generate_report", "parameters": {"data": {"\\udfff": 1}}, "use_cache": false}',
    '{"type": "execute", "tool": "\\ud800"}',
    '{"type": "execute", "tool": "generate_\\u0000report", "parameters": {"data": {}}}',
    '{"type": "execute", "tool": [], "parameters": {"data": {"sales": [3, 5, 8]}}}',
    '{"type": "ping", "request_id": "\\udfff"}',
    '{"type": "ping", "request_id": null}',
    '{"type": "subscribe", "execution_id": "\\ud800"}',
    '{"type": "subscribe", "execution_id": "%s", "after_seq": 1000000000000000000000000000000}' % OWN,
    '{"type": "subscribe", "execution_id": "%s", "after_seq": 1e400}' % OWN,
    '{"type": "subscribe", "execution_id": "{%s}"}' % OWN,
    '{"type": "execute", "tool": "generate_report", "use_cache": false, "parameters": {"data": {"x": NaN}}}',
    # Parsed by Python as infinity, which no database stores: once answered "the database is unavailable".
    '{"type": "execute", "tool": "generate_report", "use_cache": false, "parameters": {"data": {"x": 1e999}}, '
    '"request_id": "big"}',
    '{"type": "execute", "tool": "generate_report", "use_cache": false, "parameters": {"data": {"x": "a\\u0000b"}}}',
    '{"type": "execute", "tool": "generate_report", "use_cache": false, "parameters": {"data": {"d": %s}}}'
    % ("[" * 900 + "]" * 900),
    '{"type": "execute", "tool": "summarize_content", "parameters": {"url": "http://169.254.169.254/latest"}}',
    '{"type": "execute", "tool": "summarize_content", "parameters": {"url": "file:///etc/passwd"}}',
    '{"type": "execute", "type": "ping"}',
    "",
    " ",
    '\ufeff{"type": "ping"}',
]


@pytest.mark.parametrize("text", KNOWN_HOSTILE)
async def test_known_hostile_frame_gets_a_documented_answer(text, alice, world):
    own_id = await ensure_own_execution(alice, world)
    frame = with_own_id(Frame(text=text), own_id)
    comm = await open_connection(alice)
    try:
        await send_frame(comm, frame)
        await check_answer(comm, frame, _parsed(frame), world)
        await assert_alive(comm)
    finally:
        await comm.disconnect()
