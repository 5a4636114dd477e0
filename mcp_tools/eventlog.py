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
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

from django.conf import settings
from redis import exceptions as redis_errors

Event = dict[str, Any]

TERMINAL_TYPES = frozenset({"execution.completed", "execution.failed", "execution.cancelled"})


@dataclass(frozen=True)
class LayerChannels:
    """The pub/sub channels of the channel layer's groups (``events.layer_channels``):
    an execution's group is ``execution_prefix + execution_id``."""
    execution_prefix: str
    monitor: str


class EventLog(Protocol):
    def append(self, execution_id: str, event: Event) -> int | None: ...
    def append_batch(self, entries: list[tuple[str, Event]]) -> list[int | None]: ...
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


# KEYS[1] = the list, KEYS[2] = the "ended" marker; ARGV[1] = entry (JSON, no seq),
# ARGV[2] = "1" if terminal. With ARGV[3] = "1" the numbered event is also
# PUBLISHed in the channel layer's message format (JSON serializer) to ARGV[4],
# the execution's group channel, and, with ARGV[5] set, to the monitor group's
# channel ARGV[5] with the members ARGV[6] added: the event's seq is known only
# here, and one script keeps numbering and sending in the same order.
_APPEND_LUA = """
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
local n = redis.call('RPUSH', KEYS[1], ARGV[1])
if ARGV[2] == '1' then redis.call('SET', KEYS[2], '1') end
if ARGV[3] == '1' then
  local members = string.sub(ARGV[1], 1, -2) .. ',"seq":' .. n
  redis.call('PUBLISH', ARGV[4], '{"type":"execution.event","event":' .. members .. '}}')
  if ARGV[5] ~= '' then
    redis.call('PUBLISH', ARGV[5], '{"type":"monitor.event","event":' .. members .. ARGV[6] .. '}}')
  end
end
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

    # The log script can publish to the pub/sub channel layer's groups (events.Outbox).
    can_publish = True

    def _keys(self, execution_id: str) -> list[str]:
        return [f"{self.prefix}:{execution_id}", f"{self.prefix}:{execution_id}:ended"]

    def append(self, execution_id: str, event: Event) -> int | None:
        return self.append_batch([(execution_id, event)])[0]

    def append_batch(self, entries: list[tuple[str, Event]], *, publish: list[str | None] | None = None,
                     channels: LayerChannels | None = None) -> list[int | None]:
        """Append many events in one round trip; each one's seq, or None where refused.

        ``publish[i]``, with ``channels``: None to only log entry i, else send it
        too, to its execution's group and, if not empty, to the monitor's with
        these extra JSON members (``,"tool":...``).
        """
        commands = []
        for index, (execution_id, event) in enumerate(entries):
            args = [_encode(event), "1" if event["type"] in TERMINAL_TYPES else "0"]
            extra = publish[index] if publish is not None else None
            if extra is not None:
                args += ["1", channels.execution_prefix + execution_id, channels.monitor if extra else "", extra]
            commands.append((*self._keys(execution_id), *args))
        results = self._evalsha_all(commands)
        return [None if seq < 0 else seq for seq in results]

    def _evalsha_all(self, commands: list[tuple]) -> list[int]:
        # EVALSHA in a plain pipeline: redis-py's Script objects would add a
        # SCRIPT EXISTS round trip to every batch.
        for attempt in (1, 2):
            pipe = self.redis.pipeline(transaction=False)
            for command in commands:
                pipe.evalsha(self._append.sha, 2, *command)
            results = pipe.execute(raise_on_error=False)
            errors = [r for r in results if isinstance(r, Exception)]
            if not errors:
                return [int(r) for r in results]
            # After a Redis restart the script is gone, for every command of the
            # batch alike (nothing ran): load it and send the batch again.
            if attempt == 1 and len(errors) == len(results) and all(
                    isinstance(e, redis_errors.NoScriptError) for e in errors):
                self._append.sha = self.redis.script_load(_APPEND_LUA)
                continue
            raise errors[0]
        raise AssertionError("unreachable")

    def publish(self, channels: LayerChannels, event: Event, *, monitor_fields: str) -> None:
        """Send an already logged event (with its seq) as the channel layer would."""
        body = json.dumps(event, separators=(",", ":"))
        pipe = self.redis.pipeline(transaction=False)
        pipe.publish(channels.execution_prefix + event["execution_id"], f'{{"type":"execution.event","event":{body}}}')
        if monitor_fields:
            pipe.publish(channels.monitor, f'{{"type":"monitor.event","event":{body[:-1]}{monitor_fields}}}}}')
        pipe.execute()

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

    def append_batch(self, entries: list[tuple[str, Event]]) -> list[int | None]:
        return [self.append(execution_id, event) for execution_id, event in entries]

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
