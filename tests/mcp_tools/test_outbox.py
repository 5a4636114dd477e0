"""The publisher and its outbox: coalescing, order, ends, outages (mcp_tools/events.py).

The first tests run on the embedded default (memory log, in-memory layer).
The ``production`` ones use the real Redis and a real
``RedisPubSubChannelLayer``: the event log's script publishes to the layer's
group channels itself, so they check that the installed channels_redis names
those channels as we do and receives what the script sends.
"""
from __future__ import annotations

import asyncio
import threading
import time
import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from redis.exceptions import ConnectionError as RedisConnectionError

from mcp_tools.eventlog import MemoryEventLog
from mcp_tools.events import (MONITOR_GROUP, ExecutionPublisher, Outbox, cancelled_event, completed_event,
                              execution_group, layer_channels, listening)


def publisher_with(events: list[dict], *, window_ms: int = 0, settings=None) -> ExecutionPublisher:
    if settings is not None:
        settings.MCP_CONFIG = {**settings.MCP_CONFIG, "COALESCE_MS": window_ms, "COALESCE_DELTAS_PER_S": 0}
    with listening(events.append):
        return ExecutionPublisher(execution_id=str(uuid.uuid4()), tool="generate_report", user="ann")


def wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def test_events_get_contiguous_seqs_and_text_leaves_before_the_terminal_event(settings):
    events: list[dict] = []
    publisher = publisher_with(events, window_ms=1000, settings=settings)
    assert publisher.status("pending") == 1
    assert publisher.status("running", attempt=1) == 2
    for piece in ["Hel", "lo ", "world"]:
        assert publisher.text(piece) is True
    assert publisher.finish(completed_event({"report": "Hello world"}, duration_ms=1, cached=False)) is True
    assert [e["seq"] for e in events] == [1, 2, 3, 4]
    assert [e["type"] for e in events] == ["execution.status", "execution.status", "execution.delta",
                                           "execution.completed"]
    assert events[2]["text"] == "Hello world"  # the 1 s window held all three pieces; finish sent them first
    assert all(e["execution_id"] == publisher.execution_id for e in events)


def test_a_piece_slower_than_the_window_leaves_at_once_and_faster_ones_are_coalesced(settings):
    events: list[dict] = []
    publisher = publisher_with(events, window_ms=1000, settings=settings)
    publisher.status("running", attempt=1)
    started = time.monotonic()
    publisher.text("first")
    wait_for(lambda: len(events) == 2)
    assert time.monotonic() - started < 0.9  # leading edge: it did not wait for the window
    publisher.text("a")
    publisher.text("b")
    publisher.text("c")
    wait_for(lambda: len(events) == 3)
    assert events[2]["text"] == "abc"  # one delta when the window closed
    assert time.monotonic() - started >= 0.99


def test_a_full_buffer_leaves_before_the_window_closes(settings):
    events: list[dict] = []
    settings.MCP_CONFIG = {**settings.MCP_CONFIG, "COALESCE_BYTES": 10}
    publisher = publisher_with(events, window_ms=60_000, settings=settings)
    publisher.text("x")  # leading edge
    wait_for(lambda: len(events) == 1)
    publisher.text("12345")
    publisher.text("67890")  # 10 bytes buffered: sent without waiting a minute
    wait_for(lambda: len(events) == 2)
    assert [e["text"] for e in events] == ["x", "1234567890"]


def test_once_another_party_ends_the_execution_the_run_is_told_to_stop(settings):
    events: list[dict] = []
    publisher = publisher_with(events, settings=settings)
    publisher.status("running", attempt=1)
    canceller = ExecutionPublisher(execution_id=publisher.execution_id, tool="generate_report", user="ann")
    assert canceller.finish(cancelled_event(duration_ms=1)) is True
    publisher.text("too late")
    wait_for(lambda: publisher.ended)
    assert publisher.text("more") is False
    assert publisher.status("running", attempt=2) is None
    assert publisher.finish(completed_event({}, duration_ms=1, cached=False)) is False
    assert [e["type"] for e in events] == ["execution.status"]  # nothing of this run after the cancel


class FlakyLog(MemoryEventLog):
    """Refuses the next ``failures`` batches as if Redis were down."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 0

    def append_batch(self, entries):
        if self.failures:
            self.failures -= 1
            raise RedisConnectionError("Redis is down")
        return super().append_batch(entries)


def test_text_the_log_could_not_take_stays_buffered_and_the_run_sees_the_error():
    log = FlakyLog()
    outbox = Outbox()
    outbox.log = log
    events: list[dict] = []
    publisher = publisher_with(events)
    publisher.outbox, publisher.log = outbox, log
    publisher.status("running", attempt=1)
    log.failures = 1
    publisher.text("kept ")
    wait_for(lambda: publisher._error is not None)
    with pytest.raises(RedisConnectionError):
        publisher.text("next")  # the run learns of the outage on its next piece...
    assert publisher.status("retrying", attempt=2, reason="event_store_unavailable") == 3
    assert [e.get("text") or e["status"] for e in events] == ["running", "kept ", "retrying"]  # ...and nothing was lost


def test_an_outage_fails_a_waiting_publish_with_the_error():
    log = FlakyLog()
    outbox = Outbox()
    outbox.log = log
    publisher = publisher_with([])
    publisher.outbox, publisher.log = outbox, log
    log.failures = 1
    with pytest.raises(RedisConnectionError):
        publisher.status("pending")
    assert publisher.status("pending") == 1


def test_many_threads_publishing_at_once_keep_each_executions_order(settings):
    events: list[dict] = []
    lock = threading.Lock()

    def record(event: dict) -> None:
        with lock:
            events.append(event)

    settings.MCP_CONFIG = {**settings.MCP_CONFIG, "COALESCE_MS": 0, "COALESCE_DELTAS_PER_S": 0}

    def run(index: int) -> None:
        with listening(record):
            publisher = ExecutionPublisher(execution_id=f"run-{index}", tool="generate_report", user="ann")
        publisher.status("running", attempt=1)
        for piece in range(200):
            publisher.text(f"{piece} ")
        publisher.finish(completed_event({}, duration_ms=1, cached=False))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for index in range(20):
        mine = [e for e in events if e["execution_id"] == f"run-{index}"]
        assert [e["seq"] for e in mine] == list(range(1, len(mine) + 1))
        assert mine[-1]["type"] == "execution.completed"
        text = "".join(e["text"] for e in mine if e["type"] == "execution.delta")
        assert text == "".join(f"{piece} " for piece in range(200))


# --- Production: the script publishes to the real pub/sub channel layer.

@pytest.mark.production
def test_the_group_channel_names_are_the_installed_channels_redis_ones():
    from channels_redis.pubsub import RedisPubSubLoopLayer

    channels = layer_channels()
    assert channels is not None, "with Redis and the pub/sub layer, the event log publishes"
    config = settings.CHANNEL_LAYERS["default"]["CONFIG"]
    layer = RedisPubSubLoopLayer(hosts=config["hosts"], prefix=config["prefix"])
    assert channels.execution_prefix + "abc" == layer._get_group_channel_name(execution_group("abc"))
    assert channels.monitor == layer._get_group_channel_name(MONITOR_GROUP)


@pytest.mark.production
def test_a_real_pubsub_layer_receives_the_events_the_log_script_publishes(settings):
    settings.MCP_CONFIG = {**settings.MCP_CONFIG, "COALESCE_MS": 0, "COALESCE_DELTAS_PER_S": 0}
    execution_id = str(uuid.uuid4())

    async def scenario() -> tuple[list[dict], list[dict]]:
        layer = get_channel_layer()
        watcher = await layer.new_channel()
        monitor = await layer.new_channel()
        await layer.group_add(execution_group(execution_id), watcher)
        await layer.group_add(MONITOR_GROUP, monitor)

        def publish() -> None:
            publisher = ExecutionPublisher(execution_id=execution_id, tool="generate_report", user="ann")
            publisher.status("running", attempt=1)
            publisher.text('quote " and \\ and \u00e9 ')  # JSON escapes through the script's splice
            publisher.text("end")
            publisher.finish(completed_event({"report": "x"}, duration_ms=3, cached=False))

        await asyncio.get_running_loop().run_in_executor(None, publish)
        received = []
        while not received or received[-1]["event"]["type"] != "execution.completed":
            received.append(await asyncio.wait_for(layer.receive(watcher), 5))
        monitored = [await asyncio.wait_for(layer.receive(monitor), 5) for _ in range(2)]
        await layer.group_discard(execution_group(execution_id), watcher)
        await layer.group_discard(MONITOR_GROUP, monitor)
        return received, monitored

    received, monitored = async_to_sync(scenario)()
    assert all(m["type"] == "execution.event" for m in received)
    events = [m["event"] for m in received]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert "".join(e["text"] for e in events if e["type"] == "execution.delta") == 'quote " and \\ and \u00e9 end'
    assert events[-1] == {"type": "execution.completed", "status": "completed", "result": {"report": "x"},
                          "duration_ms": 3, "cached": False, "execution_id": execution_id, "seq": len(events)}
    assert [m["type"] for m in monitored] == ["monitor.event", "monitor.event"]
    assert [(m["event"]["type"], m["event"]["seq"], m["event"]["tool"], m["event"]["user"]) for m in monitored] == [
        ("execution.status", 1, "generate_report", "ann"), ("execution.completed", len(events), "generate_report", "ann")]
