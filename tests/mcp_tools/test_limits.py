"""mcp_tools/limits.py: the per-minute limit is a sliding minute (counted per second), also across a clock
minute's boundary, and retry_after says when one more start fits."""

from __future__ import annotations

import pytest

from mcp_tools import limits
from mcp_tools.errors import RateLimited

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock(monkeypatch):
    """limits' clock, set by the test: 10 minutes into some hour, then moved by hand."""
    now = {"t": 1_800_000_000.0 - 1_800_000_000.0 % 3600 + 600}
    monkeypatch.setattr(limits.time, "time", lambda: now["t"])
    return now


def _limited(user) -> int | None:
    try:
        limits.limits_check(user)
    except RateLimited as refused:
        return refused.retry_after
    return None


def test_a_burst_across_a_minutes_boundary_is_refused(alice, settings, clock):
    settings.MCP_CONFIG = {**settings.MCP_CONFIG, "RATE_LIMIT_PER_MINUTE": 3}
    clock["t"] += 59.5
    assert [_limited(alice) for _ in range(3)] == [None, None, None]
    clock["t"] += 1.0  # the next clock minute: a fixed window would let 3 more through
    retry_after = _limited(alice)
    assert retry_after is not None and 58 <= retry_after <= 60  # when the burst's second leaves the window
    clock["t"] += retry_after - 2
    assert _limited(alice) is not None
    clock["t"] += 2
    assert _limited(alice) is None


def test_refused_starts_do_not_count_and_the_limit_holds_over_time(alice, settings, clock):
    settings.MCP_CONFIG = {**settings.MCP_CONFIG, "RATE_LIMIT_PER_MINUTE": 2}
    assert [_limited(alice) for _ in range(2)] == [None, None]
    assert all(_limited(alice) is not None for _ in range(5))
    accepted = []
    for _ in range(60 * 5):  # five minutes, a try every second
        clock["t"] += 1
        if _limited(alice) is None:
            accepted.append(clock["t"])
    # Never more than 2 in any sliding minute; and the limit is not starved either.
    assert all(later - earlier >= 60 for earlier, later in zip(accepted, accepted[2:], strict=False))
    assert len(accepted) >= 5


def test_retry_after_says_when_one_more_fits(alice, settings, clock):
    settings.MCP_CONFIG = {**settings.MCP_CONFIG, "RATE_LIMIT_PER_MINUTE": 4}
    clock["t"] += 30
    for _ in range(4):
        assert _limited(alice) is None
    retry_after = _limited(alice)
    clock["t"] += retry_after - 1
    assert _limited(alice) is not None
    clock["t"] += 1 + 1  # the refusal just above said to wait again; its own answer is at most 1 s off
    assert _limited(alice) is None
