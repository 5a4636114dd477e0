"""Per-user limits on starting executions: how many at once, how many per minute.

    limits_check(user)     # RateLimited (with retry_after) when over either limit

The concurrent limit counts the user's active executions (queued or
running). The per-minute limit is a sliding minute counted per second: one
cache counter per second in which the user started something (an INCR, atomic
in Redis), and a start is allowed when this second's and the 59 before it hold
fewer than the limit. So no 60-second span sees more starts than the limit,
give or take the second a start fell in (a fixed clock minute would let twice
the limit through around its boundary); ``retry_after`` is when the oldest
counted second leaves the window (at most 60 s). A refused start is not
counted. Waiting in the queue is governed by fair share
(``mcp_tools/engine/claims.py``), not here.
"""

from __future__ import annotations

import math
import time

from django.conf import settings
from django.core.cache import cache

from . import metrics
from .errors import RateLimited
from .models import ToolExecution


def limits_check(user) -> None:
    config = settings.MCP_CONFIG
    active = ToolExecution.objects.filter(user=user, status__in=ToolExecution.ACTIVE_STATUSES).count()
    if active >= config["MAX_CONCURRENT_EXECUTIONS"]:
        metrics.rate_limited("concurrent")
        raise RateLimited(f"At most {config['MAX_CONCURRENT_EXECUTIONS']} executions may run at once.", retry_after=1)
    _per_minute_check(user, config["RATE_LIMIT_PER_MINUTE"])


WINDOW_S = 60


def _per_minute_check(user, limit: int) -> None:
    now = time.time()
    second = int(now)
    key = f"ratelimit:executions:{user.pk}:{second}"
    try:  # one round trip once this second's counter exists (INCR keeps its expiry)
        count = cache.incr(key)
    except ValueError:  # the second's first start: create the counter
        count = 1 if cache.add(key, 1, timeout=WINDOW_S + 1) else cache.incr(key)
    earlier_keys = {f"ratelimit:executions:{user.pk}:{s}": s for s in range(second - WINDOW_S + 1, second)}
    earlier = {earlier_keys[k]: int(v) for k, v in cache.get_many(list(earlier_keys)).items()}
    if sum(earlier.values()) + count <= limit:
        return
    cache.decr(key)  # a refused start does not count
    metrics.rate_limited("per_minute")
    counts = sorted({**earlier, second: count - 1}.items())
    raise RateLimited(f"At most {limit} executions per minute.", retry_after=_seconds_until_room(counts, limit, now))


def _seconds_until_room(counts: list[tuple[int, int]], limit: int, now: float) -> int:
    """Seconds until one more start fits: the oldest seconds leave the window one by one."""
    in_window, leaves_at = sum(count for _, count in counts), now + WINDOW_S
    for second, count in counts:
        if in_window < limit:
            break
        in_window -= count
        leaves_at = second + WINDOW_S
    return max(1, math.ceil(leaves_at - now))
