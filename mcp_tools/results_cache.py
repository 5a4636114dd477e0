"""The result cache: a cacheable tool's result, by tool and parameters, for ``MCP_CACHE_TTL``.

Only tools that say they are pure (``cacheable``) are cached; a cached answer
is still an execution (recorded, streamed, counted; ``cached: true``). The
streamed text is kept beside the result so the answer streams again::

    cached = result_cache_lookup("generate_report", {"data": {...}})   # CachedAnswer or None
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CachedAnswer:
    result: dict[str, Any]
    text: str


def cache_key(tool_name: str, parameters: dict[str, Any]) -> str:
    canonical = json.dumps(parameters, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return f"mcp_tool:{tool_name}:{hashlib.sha256(canonical.encode()).hexdigest()}"


def result_cache_lookup(tool_name: str, parameters: dict[str, Any]) -> CachedAnswer | None:
    stored = cache.get(cache_key(tool_name, parameters))
    if not isinstance(stored, dict) or "result" not in stored:
        return None
    return CachedAnswer(result=stored["result"], text=stored.get("text", ""))


def result_cache_store(tool_name: str, parameters: dict[str, Any], result: dict[str, Any], text: str) -> None:
    """Store a completed result. A cache that cannot be written is logged, never raised: the cache is an
    optimisation, and the store comes just before the execution's ending is recorded (engine/runner.py)."""
    try:
        cache.set(cache_key(tool_name, parameters), {"result": result, "text": text}, settings.MCP_CONFIG["CACHE_TTL"])
    except Exception:
        logger.warning("The result of a %s execution could not be cached", tool_name, exc_info=True)
