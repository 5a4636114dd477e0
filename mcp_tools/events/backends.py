"""The event log's two backends: Redis (production) and memory (the embedded default).

Both keep the contract of ``log.py``; pick one with ``get_event_log()``::

    log = get_event_log()
    appended = log.append_many([Entry(execution_id, event, epoch)])[0]     # sync: service code
    snapshot = await log.aread(execution_id, after_seq=3)                  # async: engine, delivery

The Redis backend has one client for synchronous callers and one per event
loop for asynchronous ones (a redis.asyncio client belongs to the loop it
first ran on). Both run the same Lua scripts, sent with EVALSHA in one
pipeline per batch (redis-py's Script objects would add a SCRIPT EXISTS
round trip to every batch).
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import threading
import time
import weakref
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import redis
import redis.asyncio as aioredis
from django.conf import settings
from redis import exceptions as redis_errors

from .log import (
    APPEND_LUA,
    CANCEL_LUA,
    CREATE_LUA,
    NEWS_LUA,
    Appended,
    Entry,
    Facts,
    Head,
    Refused,
    Snapshot,
    create_args,
    decode,
    encode,
    has_news,
    keys,
)
from .schema import TERMINAL_TYPES

# Threads and tasks wait for a free connection (a blocking pool) rather than fail past the cap.
REDIS_MAX_CONNECTIONS = 100
REDIS_POOL_TIMEOUT_S = 10
REDIS_SOCKET_TIMEOUT_S = 10


class RedisEventLog:
    """The log in Redis: shared by every process, atomic by Lua."""

    def __init__(self, url: str, *, prefix: str) -> None:
        self.url = url
        self.prefix = prefix
        self.sync = redis.Redis(
            connection_pool=redis.BlockingConnectionPool.from_url(
                url,
                max_connections=REDIS_MAX_CONNECTIONS,
                timeout=REDIS_POOL_TIMEOUT_S,
                socket_timeout=REDIS_SOCKET_TIMEOUT_S,
                health_check_interval=30,
            )
        )
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = weakref.WeakKeyDictionary()
        self._shas = {name: _sha(text) for name, text in SCRIPTS.items()}

    def _aclient(self) -> aioredis.Redis:
        loop = asyncio.get_running_loop()
        client = self._async.get(loop)
        if client is None:
            client = self._async[loop] = aioredis.Redis(
                connection_pool=aioredis.BlockingConnectionPool.from_url(
                    self.url,
                    max_connections=REDIS_MAX_CONNECTIONS,
                    timeout=REDIS_POOL_TIMEOUT_S,
                    socket_timeout=REDIS_SOCKET_TIMEOUT_S,
                    health_check_interval=30,
                )
            )
        return client

    # --- Commands as (script, keys, args), run by either face.

    def _append_commands(self, entries: list[Entry]) -> list[tuple[str, list[str], list[Any]]]:
        return [("append", keys(self.prefix, e.execution_id), e.args()) for e in entries]

    # --- Synchronous face.

    def create(self, entry: Entry) -> Appended:
        return Appended.from_reply(
            self._run([("create", keys(self.prefix, entry.execution_id), create_args(entry))])[0]
        )

    def append_many(self, entries: list[Entry]) -> list[Appended]:
        return [Appended.from_reply(r) for r in self._run(self._append_commands(entries))]

    def request_cancel(self, execution_id: str) -> bool:
        return bool(self._run([("cancel", keys(self.prefix, execution_id)[1:], [])])[0])

    def read(self, execution_id: str, after_seq: int = 0) -> Snapshot:
        entries_key, facts_key = keys(self.prefix, execution_id)
        pipe = self.sync.pipeline(transaction=True)
        pipe.lrange(entries_key, after_seq, -1)
        pipe.llen(entries_key)
        pipe.hmget(facts_key, "epoch", "ended")
        raw, length, (epoch, ended) = pipe.execute()
        return _snapshot(raw, length, epoch, ended, after_seq)

    def facts(self, execution_id: str) -> Facts:
        return _facts(self.sync.hmget(keys(self.prefix, execution_id)[1], *FACT_FIELDS))

    def publish(self, payloads: list[tuple[str, str]]) -> None:
        """PUBLISH already numbered events (``dispatch.ScriptChannels.payloads``)."""
        pipe = self.sync.pipeline(transaction=False)
        for channel, payload in payloads:
            pipe.publish(channel, payload)
        pipe.execute()

    def expire(self, execution_id: str, ttl_s: int) -> None:
        pipe = self.sync.pipeline(transaction=False)
        for key in keys(self.prefix, execution_id):
            pipe.expire(key, ttl_s)
        pipe.execute()

    def available(self) -> bool:
        try:
            return bool(self.sync.ping())
        except redis_errors.RedisError:
            return False

    def _run(self, commands: list[tuple[str, list[str], list[Any]]]) -> list[Any]:
        for attempt in (1, 2):
            pipe = self.sync.pipeline(transaction=False)
            for name, command_keys, args in commands:
                pipe.evalsha(self._shas[name], len(command_keys), *command_keys, *args)
            results = pipe.execute(raise_on_error=False)
            if not self._retry_after_script_loss(results, attempt):
                return _raise_first_error(results)
            for text in SCRIPTS.values():
                self.sync.script_load(text)
        raise AssertionError("unreachable")

    # --- Asynchronous face.

    async def acreate(self, entry: Entry) -> Appended:
        reply = await self._arun([("create", keys(self.prefix, entry.execution_id), create_args(entry))])
        return Appended.from_reply(reply[0])

    async def aappend_many(self, entries: list[Entry]) -> list[Appended]:
        return [Appended.from_reply(r) for r in await self._arun(self._append_commands(entries))]

    async def arequest_cancel(self, execution_id: str) -> bool:
        return bool((await self._arun([("cancel", keys(self.prefix, execution_id)[1:], [])]))[0])

    async def aread(self, execution_id: str, after_seq: int = 0) -> Snapshot:
        entries_key, facts_key = keys(self.prefix, execution_id)
        pipe = self._aclient().pipeline(transaction=True)
        pipe.lrange(entries_key, after_seq, -1)
        pipe.llen(entries_key)
        pipe.hmget(facts_key, "epoch", "ended")
        raw, length, (epoch, ended) = await pipe.execute()
        return _snapshot(raw, length, epoch, ended, after_seq)

    async def afacts_news(self, known: dict[str, tuple[str, int]]) -> dict[str, Facts]:
        """For the control poll, one script for every run: the facts of each log that tell its run
        something (``log.has_news``), given what each run knows, ``{execution_id: (epoch, attempt)}``."""
        execution_ids = list(known)
        if not execution_ids:
            return {}
        facts_keys = [keys(self.prefix, execution_id)[1] for execution_id in execution_ids]
        args = [value for execution_id in execution_ids for value in known[execution_id]]
        [reply] = await self._arun([("news", facts_keys, args)])
        return {execution_ids[int(reply[i]) - 1]: _facts(reply[i + 1 : i + 5]) for i in range(0, len(reply), 5)}

    async def aheads(self, execution_ids: list[str]) -> dict[str, Head]:
        """How far each log has got, in one round trip (the idle poll asks so before reading a log)."""
        pipe = self._aclient().pipeline(transaction=True)
        for execution_id in execution_ids:
            entries_key, facts_key = keys(self.prefix, execution_id)
            pipe.llen(entries_key)
            pipe.hget(facts_key, "epoch")
        replies = await pipe.execute()
        return {
            execution_id: Head(epoch=_text(epoch), last_seq=int(length))
            for execution_id, length, epoch in zip(execution_ids, replies[::2], replies[1::2], strict=True)
        }

    async def apublish(self, payloads: list[tuple[str, str]]) -> None:
        pipe = self._aclient().pipeline(transaction=False)
        for channel, payload in payloads:
            pipe.publish(channel, payload)
        await pipe.execute()

    async def aexpire(self, execution_id: str, ttl_s: int) -> None:
        pipe = self._aclient().pipeline(transaction=False)
        for key in keys(self.prefix, execution_id):
            pipe.expire(key, ttl_s)
        await pipe.execute()

    async def _arun(self, commands: list[tuple[str, list[str], list[Any]]]) -> list[Any]:
        client = self._aclient()
        for attempt in (1, 2):
            pipe = client.pipeline(transaction=False)
            for name, command_keys, args in commands:
                pipe.evalsha(self._shas[name], len(command_keys), *command_keys, *args)
            results = await pipe.execute(raise_on_error=False)
            if not self._retry_after_script_loss(results, attempt):
                return _raise_first_error(results)
            for text in SCRIPTS.values():
                await client.script_load(text)
        raise AssertionError("unreachable")

    @staticmethod
    def _retry_after_script_loss(results: list[Any], attempt: int) -> bool:
        """After a Redis restart the scripts are gone, for every command of a batch alike
        (nothing ran): load them and send the batch again, once."""
        errors = [r for r in results if isinstance(r, Exception)]
        return (
            attempt == 1
            and bool(errors)
            and len(errors) == len(results)
            and all(isinstance(e, redis_errors.NoScriptError) for e in errors)
        )


FACT_FIELDS = ("epoch", "ended", "cancel", "attempt")


def _facts(reply: Sequence[bytes | str | None]) -> Facts:
    return Facts(epoch=_text(reply[0]), ended=bool(reply[1]), cancel_asked=bool(reply[2]), attempt=int(reply[3] or 0))


SCRIPTS = {"append": APPEND_LUA, "create": CREATE_LUA, "cancel": CANCEL_LUA, "news": NEWS_LUA}


def _sha(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def _raise_first_error(results: list[Any]) -> list[Any]:
    for result in results:
        if isinstance(result, Exception):
            raise result
    return results


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value


def _snapshot(raw: list[bytes], length: int, epoch: bytes | None, ended: bytes | None, after_seq: int) -> Snapshot:
    epoch_text = _text(epoch)
    return Snapshot(
        events=decode(raw, after_seq + 1, epoch_text), epoch=epoch_text, last_seq=int(length), ended=bool(ended)
    )


class _MemoryLog:
    __slots__ = ("epoch", "entries", "ended", "attempt", "cancel")

    def __init__(self, epoch: str) -> None:
        self.epoch = epoch
        self.entries: list[str] = []
        self.ended = False
        self.attempt = 0
        self.cancel = False


class MemoryEventLog:
    """The embedded default's log: one process, so a lock is all it takes.

    ``expire`` works as Redis's EXPIRE does: after ``ttl_s`` the whole log,
    entries and facts, is gone (the row holds the events by then). Expired
    logs are dropped as new ones are created, so memory stays bounded.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._logs: dict[str, _MemoryLog] = {}
        self._deadlines: list[tuple[float, str]] = []

    def create(self, entry: Entry) -> Appended:
        with self._lock:
            self._drop_expired()
            if entry.execution_id in self._logs:
                return Appended(None, Refused.EXISTS)
            log = self._logs[entry.execution_id] = _MemoryLog(entry.epoch)
            log.entries.append(encode(entry.event))
            return Appended(1)

    def append_many(self, entries: list[Entry]) -> list[Appended]:
        with self._lock:
            return [self._append(entry) for entry in entries]

    def _append(self, entry: Entry) -> Appended:
        log = self._logs.get(entry.execution_id)
        if log is None or log.epoch != entry.epoch:
            return Appended(None, Refused.LOST, log is not None and log.cancel)
        if log.ended:
            return Appended(None, Refused.ENDED, log.cancel)
        if entry.attempt:
            if entry.attempt < log.attempt:
                return Appended(None, Refused.STALE, log.cancel)
            log.attempt = entry.attempt
        log.entries.append(encode(entry.event))
        log.ended = entry.event["type"] in TERMINAL_TYPES
        return Appended(len(log.entries), None, log.cancel)

    def request_cancel(self, execution_id: str) -> bool:
        with self._lock:
            log = self._logs.get(execution_id)
            if log is None or log.ended:
                return False
            log.cancel = True
            return True

    def read(self, execution_id: str, after_seq: int = 0) -> Snapshot:
        with self._lock:
            log = self._logs.get(execution_id)
            if log is None:
                return Snapshot()
            raw = log.entries[after_seq:]
            return Snapshot(
                events=decode(raw, after_seq + 1, log.epoch),
                epoch=log.epoch,
                last_seq=len(log.entries),
                ended=log.ended,
            )

    def expire(self, execution_id: str, ttl_s: int) -> None:
        with self._lock:
            if execution_id in self._logs:
                heapq.heappush(self._deadlines, (time.monotonic() + ttl_s, execution_id))

    def _drop_expired(self) -> None:
        now = time.monotonic()
        while self._deadlines and self._deadlines[0][0] <= now:
            _, execution_id = heapq.heappop(self._deadlines)
            self._logs.pop(execution_id, None)

    def available(self) -> bool:
        return True

    # The asynchronous face: the same calls, nothing to wait for.
    async def acreate(self, entry: Entry) -> Appended:
        return self.create(entry)

    async def aappend_many(self, entries: list[Entry]) -> list[Appended]:
        return self.append_many(entries)

    async def arequest_cancel(self, execution_id: str) -> bool:
        return self.request_cancel(execution_id)

    async def aread(self, execution_id: str, after_seq: int = 0) -> Snapshot:
        return self.read(execution_id, after_seq)

    def facts(self, execution_id: str) -> Facts:
        with self._lock:
            log = self._logs.get(execution_id)
            if log is None:
                return Facts()
            return Facts(epoch=log.epoch, ended=log.ended, cancel_asked=log.cancel, attempt=log.attempt)

    async def afacts_news(self, known: dict[str, tuple[str, int]]) -> dict[str, Facts]:
        facts = {execution_id: self.facts(execution_id) for execution_id in known}
        return {e: f for e, f in facts.items() if has_news(f, epoch=known[e][0], attempt=known[e][1])}

    async def aheads(self, execution_ids: list[str]) -> dict[str, Head]:
        with self._lock:
            logs = {execution_id: self._logs.get(execution_id) for execution_id in execution_ids}
            return {e: Head() if log is None else Head(log.epoch, len(log.entries)) for e, log in logs.items()}

    async def aexpire(self, execution_id: str, ttl_s: int) -> None:
        self.expire(execution_id, ttl_s)


EventLog = RedisEventLog | MemoryEventLog


@lru_cache(maxsize=1)
def get_event_log() -> EventLog:
    if settings.EVENT_LOG_URL:
        return RedisEventLog(settings.EVENT_LOG_URL, prefix=f"{settings.REDIS_NAMESPACE}:log")
    return MemoryEventLog()
