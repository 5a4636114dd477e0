"""Per-user limits on starting executions: how many at once, how many per minute.

    limits_check(user)     # RateLimited (with retry_after) when over either limit

The concurrent limit counts the user's active executions (queued or
running). The per-minute limit is a sliding minute, estimated from two
counters in the cache (Redis in production): this clock minute's and the last
one's, weighted by how much of it the sliding minute still covers. One INCR
and one GET per start; a refused start is not counted. The estimate errs on
the strict side: at a limit of 1 the next start may wait up to two minutes.
Waiting in the queue is governed by fair share (``mcp_tools/engine/claims.py``),
not here.
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


def _per_minute_check(user, limit: int) -> None:
    """A sliding minute, estimated from two fixed ones (the last minute's count, weighted by how
    much of it is still inside the sliding minute, plus this minute's): a fixed window alone would
    let 2 × the limit through around a minute's boundary."""
    now = time.time()
    minute, elapsed = int(now // 60), now % 60
    key = f"ratelimit:executions:{user.pk}:{minute}"
    try:  # one round trip once the minute's counter exists (INCR keeps its expiry)
        count = cache.incr(key)
    except ValueError:  # the minute's first execution: create the counter
        count = 1 if cache.add(key, 1, timeout=121) else cache.incr(key)
    previous = cache.get(f"ratelimit:executions:{user.pk}:{minute - 1}", 0)
    weight = (60 - elapsed) / 60
    if previous * weight + count <= limit:
        return
    cache.decr(key)  # a refused start does not count
    metrics.rate_limited("per_minute")
    raise RateLimited(
        f"At most {limit} executions per minute.",
        retry_after=_seconds_until_room(previous=previous, count=count, limit=limit, elapsed=elapsed),
    )


def _seconds_until_room(*, previous: int, count: int, limit: int, elapsed: float) -> int:
    """Seconds until one more start fits the estimate: ``count`` is this minute's starts with the
    refused one, ``previous`` the last minute's."""
    if count <= limit:
        # Room this minute once the last minute's weight has faded enough:
        # previous * (60 - t) / 60 + count <= limit  <=>  t >= 60 - (limit - count) * 60 / previous
        return max(1, math.ceil(60 - (limit - count) * 60 / previous - elapsed))
    # Not this minute. In the next one, this minute's accepted starts are the weighted ones.
    accepted = count - 1
    next_minute = 60 - (limit - 1) * 60 / accepted if accepted else 0
    return max(1, math.ceil(60 - elapsed + max(0.0, next_minute)))
