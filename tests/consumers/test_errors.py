"""Every error code of PROTOCOL.md, and the connection still working afterwards."""

from __future__ import annotations

import uuid

import pytest

from mcp_tools import services
from mcp_tools.models import ToolExecution
from tests.conftest import receive, receive_until_terminal, send

pytestmark = pytest.mark.django_db(transaction=True)


async def assert_error_then_alive(comm, frame, code: str, *, request_id: str | None = None) -> dict:
    if isinstance(frame, (bytes, str)):
        await (comm.send_to(bytes_data=frame) if isinstance(frame, bytes) else comm.send_to(text_data=frame))
    else:
        await send(comm, frame)
    error = await receive(comm)
    assert error["type"] == "error" and error["code"] == code, error
    assert error["message"]
    assert error.get("request_id") == request_id
    await send(comm, {"type": "ping"})
    assert await receive(comm) == {"type": "pong"}
    return error


async def test_invalid_json(tools, alice, connect):
    await assert_error_then_alive(await connect(alice), "{not json", "invalid_json")


@pytest.mark.parametrize(
    "frame",
    [
        "[1, 2]",
        '"text"',
        "{}",
        '{"type": 5}',
        '{"type": "execute", "parameters": {}}',
        '{"type": "execute", "tool": "generate_report", "parameters": "x"}',
        '{"type": "execute", "tool": "generate_report", "parameters": {"data": {}}, "use_cache": "yes"}',
        '{"type": "subscribe"}',
        '{"type": "subscribe", "execution_id": "x", "after_seq": -1}',
        '{"type": "subscribe", "execution_id": "x", "after_seq": true}',
        '{"type": "cancel", "execution_id": 7}',
    ],
)
async def test_invalid_message(tools, alice, connect, frame):
    await assert_error_then_alive(await connect(alice), frame, "invalid_message")


async def test_binary_frame_is_invalid_message(tools, alice, connect):
    await assert_error_then_alive(await connect(alice), b"\x00\x01", "invalid_message")


async def test_invalid_message_echoes_request_id(tools, alice, connect):
    await assert_error_then_alive(
        await connect(alice), {"type": "execute", "request_id": "r9"}, "invalid_message", request_id="r9"
    )


async def test_unknown_type(tools, alice, connect):
    await assert_error_then_alive(
        await connect(alice), {"type": "dance", "request_id": "u"}, "unknown_type", request_id="u"
    )


async def test_unknown_tool(tools, alice, connect):
    comm = await connect(alice)
    await assert_error_then_alive(
        comm, {"type": "execute", "tool": "nope", "request_id": "t"}, "unknown_tool", request_id="t"
    )
    assert await ToolExecution.objects.acount() == 0


async def test_inactive_tool_is_unknown(tools, alice, connect):
    from mcp_tools.models import Tool

    await Tool.objects.filter(name="generate_report").aupdate(is_active=False)
    await assert_error_then_alive(
        await connect(alice), {"type": "execute", "tool": "generate_report", "parameters": {"data": {}}}, "unknown_tool"
    )


async def test_invalid_parameters_lists_the_problems_and_creates_nothing(tools, alice, connect):
    comm = await connect(alice)
    error = await assert_error_then_alive(
        comm,
        {"type": "execute", "tool": "generate_report", "parameters": {"data": 3, "extra": 1}},
        "invalid_parameters",
    )
    fields = sorted(problem["field"] for problem in error["details"])
    assert fields == ["data", "extra"]
    assert await ToolExecution.objects.acount() == 0


async def test_missing_required_parameter_names_the_field(tools, alice, connect):
    error = await assert_error_then_alive(
        await connect(alice), {"type": "execute", "tool": "summarize_content"}, "invalid_parameters"
    )
    assert error["details"][0]["field"] == "url"


async def test_not_found_for_unknown_and_foreign_ids_alike(tools, alice, bob, connect):
    comm_bob = await connect(bob)
    await send(comm_bob, {"type": "execute", "tool": "generate_report", "parameters": {"data": {"x": 1}}})
    foreign = (await receive(comm_bob))["execution_id"]
    await receive_until_terminal(comm_bob)
    comm = await connect(alice)
    answers = []
    for execution_id in (foreign, str(uuid.uuid4()), "not-a-uuid"):
        for kind in ("subscribe", "unsubscribe", "cancel"):
            answers.append(
                await assert_error_then_alive(comm, {"type": kind, "execution_id": execution_id}, "not_found")
            )
    assert len({a["message"] for a in answers}) == 1  # nothing tells which ids exist
    assert (await ToolExecution.objects.aget(pk=foreign)).status == "completed"


async def test_rate_limited_with_retry_after(tools, alice, connect, settings):
    settings.MCP_CONFIG = {**settings.MCP_CONFIG, "RATE_LIMIT_PER_MINUTE": 1}
    comm = await connect(alice)
    await send(comm, {"type": "execute", "tool": "generate_report", "parameters": {"data": {}}})
    await receive(comm)
    await receive_until_terminal(comm)
    error = await assert_error_then_alive(
        comm,
        {"type": "execute", "tool": "generate_report", "parameters": {"data": {}}, "request_id": "x"},
        "rate_limited",
        request_id="x",
    )
    assert 0 < error["retry_after"] <= 60  # when the start just made leaves the sliding minute
    assert await ToolExecution.objects.acount() == 1


async def test_concurrent_limit_is_rate_limited(tools, alice, connect, settings):
    settings.MCP_CONFIG = {**settings.MCP_CONFIG, "MAX_CONCURRENT_EXECUTIONS": 1}
    await ToolExecution.objects.acreate(tool=await services.Tool.objects.aget(name="generate_report"), user=alice)
    await assert_error_then_alive(
        await connect(alice), {"type": "execute", "tool": "generate_report", "parameters": {"data": {}}}, "rate_limited"
    )


async def test_message_too_large_closes_with_4009_and_a_new_connection_works(tools, alice, connect, settings):
    settings.MCP_CONFIG = {**settings.MCP_CONFIG, "WS_MAX_MESSAGE_BYTES": 1024}
    comm = await connect(alice)
    await send(comm, {"type": "ping", "request_id": "big", "pad": "x" * 2000})
    error = await receive(comm)
    assert error["code"] == "message_too_large" and "request_id" not in error  # the frame is not parsed
    assert await comm.receive_output(timeout=5) == {"type": "websocket.close", "code": 4009}
    fresh = await connect(alice)
    await send(fresh, {"type": "ping"})
    assert await receive(fresh) == {"type": "pong"}


async def test_internal_error_keeps_the_connection(tools, alice, connect, monkeypatch):
    def explode(**kwargs):
        raise RuntimeError("boom: secret detail")

    monkeypatch.setattr(services, "execution_start", explode)
    error = await assert_error_then_alive(
        await connect(alice),
        {"type": "execute", "tool": "generate_report", "parameters": {"data": {}}, "request_id": "i"},
        "internal_error",
        request_id="i",
    )
    assert "secret" not in error["message"]


async def test_database_outage_is_an_internal_error_the_client_can_act_on(tools, alice, connect, monkeypatch):
    from django.db import OperationalError

    def down(**kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(services, "execution_start", down)
    error = await assert_error_then_alive(
        await connect(alice),
        {"type": "execute", "tool": "generate_report", "parameters": {"data": {}}},
        "internal_error",
    )
    assert "unavailable" in error["message"] and "Retry" in error["message"]


async def test_a_broker_outage_after_accepted_fails_the_execution_and_says_so(tools, alice, connect, monkeypatch):
    from kombu.exceptions import OperationalError

    from config.celery import app

    def refuse(*args, **kwargs):
        raise OperationalError("Error 111 connecting to the broker")

    comm = await connect(alice)
    with monkeypatch.context() as patch:
        patch.setattr(app, "send_task", refuse)
        await send(
            comm, {"type": "execute", "tool": "generate_report", "parameters": {"data": {"a": 1}}, "request_id": "q"}
        )
        accepted = await receive(comm)
        assert accepted["type"] == "execution.accepted" and accepted["request_id"] == "q"
        events = await receive_until_terminal(comm)
        assert [e["seq"] for e in events] == [1, 2]
        assert events[-1]["type"] == "execution.failed" and events[-1]["error"]["code"] == "queue_unavailable"
        error = await receive(comm)
        assert error["type"] == "error" and error["code"] == "internal_error" and error["request_id"] == "q"
        assert "queue" in error["message"]
    execution = await ToolExecution.objects.aget(pk=accepted["execution_id"])
    assert (execution.status, execution.error_code) == ("failed", "queue_unavailable")
    # The broker is back: the same connection runs the next execution to the end.
    await send(comm, {"type": "execute", "tool": "generate_report", "parameters": {"data": {"a": 2}}})
    assert (await receive(comm))["type"] == "execution.accepted"
    assert (await receive_until_terminal(comm))[-1]["type"] == "execution.completed"
