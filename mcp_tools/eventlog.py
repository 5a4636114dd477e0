"""The execution event log: where ``seq`` numbers come from.

Every execution event (PROTOCOL.md) is appended here before it is published,
and its ``seq`` is its position in the log, so numbering is gap-free across
retries and across worker processes. ``subscribe`` with ``after_seq`` replays
from here, and consumers fill any gap in what the channel layer delivered from
here too: the channel layer is only the fast path, the log is the truth.

The log also decides who ends an execution. Appending a terminal event
(completed, failed, cancelled) closes the log atomically; every later append
is refused and returns ``None``. So exactly one terminal event exists, and a
worker whose append is refused knows the execution was ended elsewhere (a
``cancel``) and stops::

    seq = log.append(execution_id, {"type": "execution.delta", "text": "Hi"})
    if seq is None: ...  # already ended

Two backends: Redis (production; a Lua script makes append-and-check atomic
across processes) and memory (embedded default; one process, a lock).
Entries are stored without ``seq``; readers add it from the position.
"""
from __future__ import annotations

import json
import threading
from functools import lru_cache
from typing import Any, Protocol

from django.conf import settings
from redis import exceptions as redis_errors

Event = dict[str, Any]

TERMINAL_TYPES = frozenset({"execution.completed", "execution.failed", "execution.cancelled"})


class EventLog(Protocol):
    def append(self, execution_id: str, event: Event) -> int | None: ...
    def read(self, execution_id: str, after_seq: int = 0) -> list[Event]: ...
    def last_seq(self, execution_id: str) -> int: ...
    def is_ended(self, execution_id: str) -> bool: ...
    def expire(self, execution_id: str, ttl_s: int) -> None: ...
    def available(self) -> bool: ...


def _with_seq(raw: list[str | bytes], first_seq: int) -> list[Event]:
    events = []
    for offset, item in enumerate(raw):
        event = json.loads(item)
        event["seq"] = first_seq + offset
        events.append(event)
    return events


def _encode(event: Event) -> str:
    return json.dumps({k: v for k, v in event.items() if k != "seq"}, separators=(",", ":"))


# KEYS[1] = the list, KEYS[2] = the "ended" marker; ARGV[1] = entry, ARGV[2] = "1" if terminal.
_APPEND_LUA = """
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
local n = redis.call('RPUSH', KEYS[1], ARGV[1])
if ARGV[2] == '1' then redis.call('SET', KEYS[2], '1') end
return n
"""


REDIS_POOL_MAX_CONNECTIONS = 100
REDIS_POOL_TIMEOUT_S = 10


class RedisEventLog:
    def __init__(self, url: str, *, prefix: str) -> None:
        import redis

        # A blocking pool: a worker streaming hundreds of executions at once made
        # redis-py 8's default pool raise MaxConnectionsError past 100
        # connections (bench/); here a thread waits for a free connection.
        self.redis = redis.Redis(connection_pool=redis.BlockingConnectionPool.from_url(
            url, max_connections=REDIS_POOL_MAX_CONNECTIONS, timeout=REDIS_POOL_TIMEOUT_S, socket_timeout=10,
            health_check_interval=30))
        self.prefix = prefix
        self._append = self.redis.register_script(_APPEND_LUA)

    def _keys(self, execution_id: str) -> list[str]:
        return [f"{self.prefix}:{execution_id}", f"{self.prefix}:{execution_id}:ended"]

    def append(self, execution_id: str, event: Event) -> int | None:
        terminal = "1" if event["type"] in TERMINAL_TYPES else "0"
        seq = int(self._append(keys=self._keys(execution_id), args=[_encode(event), terminal]))
        return None if seq < 0 else seq

    def read(self, execution_id: str, after_seq: int = 0) -> list[Event]:
        raw = self.redis.lrange(self._keys(execution_id)[0], after_seq, -1)
        return _with_seq(raw, after_seq + 1)

    def last_seq(self, execution_id: str) -> int:
        return int(self.redis.llen(self._keys(execution_id)[0]))

    def is_ended(self, execution_id: str) -> bool:
        return bool(self.redis.exists(self._keys(execution_id)[1]))

    def available(self) -> bool:
        try:
            return bool(self.redis.ping())
        except redis_errors.RedisError:
            return False

    def expire(self, execution_id: str, ttl_s: int) -> None:
        pipe = self.redis.pipeline()
        for key in self._keys(execution_id):
            pipe.expire(key, ttl_s)
        pipe.execute()


class MemoryEventLog:
    """For the embedded default: one process, so a lock is all it takes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._logs: dict[str, list[str]] = {}
        self._ended: set[str] = set()

    def append(self, execution_id: str, event: Event) -> int | None:
        with self._lock:
            if execution_id in self._ended:
                return None
            log = self._logs.setdefault(execution_id, [])
            log.append(_encode(event))
            if event["type"] in TERMINAL_TYPES:
                self._ended.add(execution_id)
            return len(log)

    def read(self, execution_id: str, after_seq: int = 0) -> list[Event]:
        with self._lock:
            raw = list(self._logs.get(execution_id, [])[after_seq:])
        return _with_seq(raw, after_seq + 1)

    def last_seq(self, execution_id: str) -> int:
        with self._lock:
            return len(self._logs.get(execution_id, []))

    def is_ended(self, execution_id: str) -> bool:
        with self._lock:
            return execution_id in self._ended

    def available(self) -> bool:
        return True

    def expire(self, execution_id: str, ttl_s: int) -> None:
        """Drop the entries at once (the row holds them by now); the ended
        marker stays, so a late append is still refused."""
        with self._lock:
            self._logs.pop(execution_id, None)


@lru_cache(maxsize=1)
def get_event_log() -> EventLog:
    if settings.EVENT_LOG_URL:
        return RedisEventLog(settings.EVENT_LOG_URL, prefix=f"{settings.REDIS_NAMESPACE}:log")
    return MemoryEventLog()
