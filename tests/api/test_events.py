"""GET /api/executions/{id}/events/: server-sent events on the embedded default.

Driven through ``config.asgi.application`` itself (httpx's ASGI transport),
so the async view, the in-memory channel layer and the embedded worker are
the ones a browser would meet.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from asgiref.sync import sync_to_async

from mcp_tools import services
from mcp_tools.api import sse
from mcp_tools.models import ToolExecution
from tests.api.conftest import REPORT_PARAMETERS, TERMINAL, parse_sse, token_headers, wait_for
from tests.conftest import assert_contiguous, run_now, streamed_text

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]


async def start(user, *, inline: bool = False, parameters=None) -> ToolExecution:
    """A queued execution (the embedded worker runs it), or with ``inline`` one run to its end here."""
    if inline:
        return await sync_to_async(run_now)(user, "generate_report", parameters or REPORT_PARAMETERS)
    return await sync_to_async(services.execution_start_uncached)(
        user=user, tool_name="generate_report", parameters=parameters or REPORT_PARAMETERS
    )


async def stream(client, execution_id, user, *, headers=None, query: str = ""):
    response = await client.get(
        f"/api/executions/{execution_id}/events/{query}", headers={**token_headers(user), **(headers or {})}
    )
    return response, *parse_sse(response.text)


async def test_finished_execution_streams_every_event_with_seq_as_id_then_ends(tools, alice, asgi_http):
    execution = await start(alice, inline=True)
    response, events, _ = await stream(asgi_http, execution.pk, alice)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    data = [e["data"] for e in events]
    assert_contiguous(data)
    assert all(e["id"] == e["data"]["seq"] and e["event"] == e["data"]["type"] for e in events)
    assert data[0]["type"] == "execution.status" and data[0]["status"] == "pending"
    assert data[-1]["type"] == "execution.completed" and sum(d["type"] in TERMINAL for d in data) == 1
    await execution.arefresh_from_db()
    assert data == execution.events
    assert streamed_text(data) == execution.result["report"]


async def test_live_execution_streams_until_its_terminal_event(tools, alice, asgi_http, settings):
    settings.OFFLINE_DELAY_S = 0.01  # a few hundred ms of streaming
    execution = await start(alice)
    response, events, _ = await stream(asgi_http, execution.pk, alice)
    data = [e["data"] for e in events]
    assert_contiguous(data)
    assert data[-1]["type"] == "execution.completed"
    assert [d["status"] for d in data[:2]] == ["pending", "running"]
    assert streamed_text(data) == data[-1]["result"]["report"]
    # The stream may end before the worker's final write; keep the server loop up until then.
    await wait_for(
        lambda: ToolExecution.objects.filter(pk=execution.pk, status="completed").aexists(), what="the final write"
    )


async def test_last_event_id_resumes_with_exactly_the_later_events(tools, alice, asgi_http):
    execution = await start(alice, inline=True)
    _, everything, _ = await stream(asgi_http, execution.pk, alice)
    resume_after = everything[2]["id"]
    _, rest, _ = await stream(asgi_http, execution.pk, alice, headers={"Last-Event-ID": str(resume_after)})
    assert [e["id"] for e in rest] == [e["id"] for e in everything[3:]]
    _, by_query, _ = await stream(asgi_http, execution.pk, alice, query=f"?after_seq={resume_after}")
    assert by_query == rest
    # Last-Event-ID wins over after_seq: it is what a reconnecting EventSource sends.
    _, both, _ = await stream(
        asgi_http, execution.pk, alice, headers={"Last-Event-ID": str(resume_after)}, query="?after_seq=1"
    )
    assert both == rest


async def test_resuming_after_the_terminal_event_ends_at_once_with_nothing(tools, alice, asgi_http):
    execution = await start(alice, inline=True)
    _, everything, _ = await stream(asgi_http, execution.pk, alice)
    response, events, _ = await stream(
        asgi_http, execution.pk, alice, headers={"Last-Event-ID": str(everything[-1]["id"])}
    )
    assert response.status_code == 200 and events == []


async def test_stream_sends_keepalives_while_quiet_and_ends_on_cancel(tools, alice, monkeypatch):
    monkeypatch.setattr(sse, "KEEPALIVE_S", 0.2)
    # Recorded but never queued: the stream can only wait.
    execution = await sync_to_async(services.execution_prepare)(
        user=alice, tool_name="generate_report", parameters=REPORT_PARAMETERS
    )
    chunks = sse.event_stream(str(execution.pk), after_seq=0)
    assert (await anext(chunks)).startswith("id: 1\nevent: execution.status\n")
    assert await asyncio.wait_for(anext(chunks), 5) == ": keepalive\n\n"
    await sync_to_async(services.execution_cancel)(user=alice, execution_id=execution.pk)
    rest = [chunk async for chunk in chunks if not chunk.startswith(":")]
    assert len(rest) == 1 and rest[0].startswith("id: 2\nevent: execution.cancelled\n")


async def test_other_users_and_unknown_executions_are_404(tools, alice, bob, asgi_http):
    execution = await start(alice, inline=True)
    for execution_id in (execution.pk, uuid.uuid4(), "nope"):
        response, _, _ = await stream(asgi_http, execution_id, bob)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


async def test_stream_needs_credentials_and_accepts_a_query_token(tools, alice, asgi_http):
    execution = await start(alice, inline=True)
    url = f"/api/executions/{execution.pk}/events/"
    anonymous = await asgi_http.get(url)
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "not_authenticated"
    bad = await asgi_http.get(url, headers={"Authorization": "Token wrong"})
    assert bad.status_code == 401
    # A bad header token is not rescued by a good query token (the first one present is judged).
    mixed = await asgi_http.get(url + f"?token={alice.auth_token.key}", headers={"Authorization": "Token wrong"})
    assert mixed.status_code == 401
    by_query = await asgi_http.get(url + f"?token={alice.auth_token.key}")
    assert by_query.status_code == 200 and parse_sse(by_query.text)[0][-1]["event"] == "execution.completed"


async def test_invalid_resume_point_is_400(tools, alice, asgi_http):
    execution = await start(alice, inline=True)
    for headers, query in (({"Last-Event-ID": "abc"}, ""), ({}, "?after_seq=-2")):
        response, _, _ = await stream(asgi_http, execution.pk, alice, headers=headers, query=query)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_message"


async def test_only_get_is_allowed(tools, alice, asgi_http):
    execution = await start(alice, inline=True)
    response = await asgi_http.post(f"/api/executions/{execution.pk}/events/", headers=token_headers(alice))
    assert response.status_code == 405


async def test_stream_leaves_the_execution_group_when_the_client_goes_away(tools, alice):
    from channels.layers import get_channel_layer

    from mcp_tools.events import execution_group

    execution = await sync_to_async(services.execution_prepare)(
        user=alice, tool_name="generate_report", parameters=REPORT_PARAMETERS
    )
    layer = get_channel_layer()
    group = execution_group(str(execution.pk))
    chunks = sse.event_stream(str(execution.pk), after_seq=0)
    await anext(chunks)
    assert len(layer._groups.get(group, ())) == 1
    await chunks.aclose()  # what Django does when the client disconnects
    assert not layer._groups.get(group)
