"""Per-user limits on starting executions: how many at once, how many per minute.

    limits_check(user)     # RateLimited (with retry_after) when over either limit

The concurrent limit counts the user's active executions (queued or
running); the per-minute counter lives in the cache (Redis in production),
one INCR per start. Waiting in the queue is governed by fair share
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
        raise RateLimited(f"At most {config['MAX_CONCURRENT_EXECUTIONS']} executions may run at once.",
                          retry_after=1)
    now = time.time()
    key = f"ratelimit:executions:{user.pk}:{int(now // 60)}"
    try:  # one round trip once the minute's counter exists (INCR keeps its expiry)
        count = cache.incr(key)
    except ValueError:  # the minute's first execution: create the counter
        count = 1 if cache.add(key, 1, timeout=61) else cache.incr(key)
    if count > config["RATE_LIMIT_PER_MINUTE"]:
        metrics.rate_limited("per_minute")
        raise RateLimited(f"At most {config['RATE_LIMIT_PER_MINUTE']} executions per minute.",
                          retry_after=math.ceil(60 - now % 60))
