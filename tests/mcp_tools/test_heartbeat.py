"""The engine's heartbeat: renewed by its own thread while the loop comes round, stopped when the loop wedges."""

from __future__ import annotations

import time

import pytest
from django.core.cache import cache

from mcp_tools.engine import liveness
from tests.stack import wait_until

INTERVAL_S = 0.05


@pytest.fixture
def heartbeat(settings):
    settings.MCP_CONFIG = {**settings.MCP_CONFIG, "HEARTBEAT_STALE_S": 0.5}
    beating = liveness.Heartbeat("test-host:1:heartbeat", interval_s=INTERVAL_S)
    beating.start()
    yield beating
    beating.stop()


def alive(heartbeat) -> bool:
    return cache.get(liveness.heartbeat_key(heartbeat.worker_id)) is not None


def test_a_busy_loop_keeps_its_heartbeat_past_the_stale_window(heartbeat, monkeypatch):
    """The loop last came round 3 stale windows ago (busy, not wedged): the heartbeat goes on.

    Counted in beats, not in wall-clock looks at the key: a test thread descheduled for a
    stale window on a loaded machine would otherwise see a lapse no engine would."""
    beats: list[float] = []
    real_beat = liveness.beat

    def counted_beat(worker_id: str) -> None:
        real_beat(worker_id)
        beats.append(time.monotonic())

    monkeypatch.setattr(liveness, "beat", counted_beat)
    wait_until(lambda: alive(heartbeat), timeout=5, what="the first heartbeat")
    heartbeat.loop_ticked_at = time.monotonic() - 3 * 0.5
    since = time.monotonic()
    wait_until(lambda: sum(at > since for at in beats) >= 10, timeout=10, what="ten beats with the loop busy")
    wait_until(lambda: alive(heartbeat), timeout=5, what="the key, still renewed")


def test_a_wedged_loop_stops_the_heartbeat(heartbeat):
    wait_until(lambda: alive(heartbeat), timeout=5, what="the first heartbeat")
    heartbeat.loop_ticked_at = time.monotonic() - liveness.LOOP_STALL_S - 1
    wait_until(lambda: not alive(heartbeat), timeout=5, what="the key to lapse")
    heartbeat.loop_ticked()
    wait_until(lambda: alive(heartbeat), timeout=5, what="the heartbeat again once the loop runs")


def test_stop_removes_the_key_at_once(settings):
    settings.MCP_CONFIG = {**settings.MCP_CONFIG, "HEARTBEAT_STALE_S": 60}
    beating = liveness.Heartbeat("test-host:2:heartbeat", interval_s=INTERVAL_S)
    beating.start()
    wait_until(lambda: alive(beating), timeout=5, what="the first heartbeat")
    beating.stop()
    assert not alive(beating)
