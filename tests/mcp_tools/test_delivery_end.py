"""Delivery never tells a client an execution ended before its row says so (``delivery.read_events``).

The engine logs a terminal event (the claim), writes the row from it, then
sends it. A follower that read the log in between handed the end to its
client while the row still said running: under CPU load, one server-sent
events stream in twenty ended before ``/status/`` said completed. Here the
gap is held open on purpose: the event is logged, the row not yet written.
"""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from mcp_tools import delivery, outcomes, services
from mcp_tools.events import completed_event, get_event_log, status_event

pytestmark = pytest.mark.django_db(transaction=True)


def logged_but_not_recorded(user) -> tuple[str, dict]:
    """An execution whose completed event is in the log while its row still says running."""
    execution = services.execution_prepare(user=user, tool_name="generate_report", parameters={"data": {"a": 1}})
    writer = services.writer_for(execution)
    *_, appended = writer.append(
        [status_event("running", attempt=1), completed_event({"report": "r"}, duration_ms=5, cached=False, attempt=1)]
    )
    terminal = {
        **completed_event({"report": "r"}, duration_ms=5, cached=False, attempt=1),
        "execution_id": str(execution.pk),
        "seq": appended.seq,
        "epoch": execution.epoch,
    }
    return str(execution.pk), terminal


def record_and_send(execution_id: str, terminal: dict) -> None:
    from mcp_tools.models import ToolExecution

    execution = ToolExecution.objects.select_related("tool", "user").get(pk=execution_id)
    outcomes.record_end(
        execution_id=execution_id,
        tool_id=execution.tool_id,
        event=terminal,
        events=get_event_log().read(execution_id).events,
    )
    services.writer_for(execution).send(terminal)


async def test_a_terminal_event_is_held_back_until_the_row_records_it(tools, alice):
    execution_id, terminal = await sync_to_async(logged_but_not_recorded)(alice)
    held = await delivery.read_events(execution_id)
    assert [e["type"] for e in held.events] == ["execution.status", "execution.status"]
    assert (held.ended, held.last_seq) == (False, 3)
    await sync_to_async(record_and_send)(execution_id, terminal)
    recorded = await delivery.read_events(execution_id)
    assert recorded.ended and recorded.events[-1]["type"] == "execution.completed"


async def test_a_held_back_end_still_reaches_the_follower_once_written_and_sent(tools, alice):
    from mcp_tools.models import ToolExecution

    execution_id, terminal = await sync_to_async(logged_but_not_recorded)(alice)
    events = delivery.follow(execution_id)
    first = [await anext(events), await anext(events)]  # what the log may give now
    assert [e["status"] for e in first] == ["pending", "running"]
    await sync_to_async(record_and_send)(execution_id, terminal)
    end = await anext(events)
    assert end["type"] == "execution.completed" and end["seq"] == 3
    assert (await ToolExecution.objects.aget(pk=execution_id)).status == "completed"
    await events.aclose()
