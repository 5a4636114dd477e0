"""The execution event log: where ``seq`` numbers come from, and who may end an execution.

Every execution event (docs/protocol.md) is appended here before anyone sees
it, and its ``seq`` is its position in the log, so numbering is gap-free
across retries and worker processes. ``subscribe`` with ``after_seq`` replays
from here, and every follower fills gaps in what the channel layer delivered
from here: the channel layer is the fast path, the log is the truth.

Beside the entries each log keeps a few facts that make writes exact:

* ``ended``: appending a terminal event closes the log atomically; every later
  append is refused (``Refused.ENDED``). So exactly one terminal event exists.
* ``epoch``: a random name given when the log is created. If the live log is
  lost (Redis restarted without persistence, flushed), appends naming the old
  epoch are refused (``Refused.LOST``) and the writer starts a new log with a
  new epoch; followers see the epoch change and start over, never a silent gap.
* ``attempt``: the newest attempt that wrote. An append from an older attempt
  is refused (``Refused.STALE``): a worker that was given up for lost and whose
  execution runs again elsewhere can no longer write.
* ``cancel``: a cancel was asked for; every append tells its writer.

Two backends with one contract: Redis (production; Lua scripts make each
append and its checks atomic across processes, and with the pub/sub channel
layer the script also publishes the numbered event, so numbering and sending
are one step) and memory (the embedded default: one process, a lock). The
Redis backend has a synchronous face (service code in request threads) and an
asynchronous one (the worker engine's event loop) over the same scripts.
"""

from __future__ import annotations

import enum
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .schema import TERMINAL_TYPES, Event


class Refused(enum.IntEnum):
    """Why an append was not written (the Lua scripts return these numbers)."""

    ENDED = -1  # a terminal event is already in the log
    LOST = -2  # the log's epoch is not the writer's: the log was lost and maybe started again
    STALE = -3  # a newer attempt has written: this writer was given up
    EXISTS = -4  # create: the log already exists


@dataclass(frozen=True)
class Entry:
    """One event to append, with the checks that guard it and where to publish it."""

    execution_id: str
    event: Event
    epoch: str
    attempt: int = 0  # 0: not an attempt's write (cancel, reaper, cache): no fence check
    publish: tuple[str, str, str] | None = None  # (execution channel, monitor channel or "", monitor members)

    def args(self) -> list[Any]:
        terminal = "1" if self.event["type"] in TERMINAL_TYPES else "0"
        args: list[Any] = [encode(self.event), terminal, self.epoch, self.attempt]
        if self.publish is not None:
            args += ["1", *self.publish]
        return args


@dataclass(frozen=True)
class Appended:
    """The answer to one append: its seq, or why it was refused; and whether a cancel was asked for."""

    seq: int | None
    refused: Refused | None = None
    cancel_requested: bool = False

    @classmethod
    def from_reply(cls, reply: list[int]) -> Appended:
        code, cancel = int(reply[0]), bool(int(reply[1]))
        if code < 0:
            return cls(None, Refused(code), cancel)
        return cls(code, None, cancel)


@dataclass(frozen=True)
class Facts:
    """A log's facts without its entries: its epoch ("" if there is no log), whether it ended,
    whether a cancel was asked, and the newest attempt that wrote."""

    epoch: str = ""
    ended: bool = False
    cancel_asked: bool = False
    attempt: int = 0


@dataclass(frozen=True)
class Head:
    """How far a log has got: its epoch ("" if there is no log) and its last seq."""

    epoch: str = ""
    last_seq: int = 0


@dataclass
class Snapshot:
    """What the log holds after some seq: the events (with seq and epoch), the epoch, the last seq."""

    events: list[Event] = field(default_factory=list)
    epoch: str = ""
    last_seq: int = 0
    ended: bool = False


def new_epoch() -> str:
    return secrets.token_hex(4)


def encode(event: Event) -> str:
    return json.dumps({k: v for k, v in event.items() if k not in ("seq", "epoch")}, separators=(",", ":"))


def decode(raw: Sequence[str | bytes], first_seq: int, epoch: str) -> list[Event]:
    events = []
    for offset, item in enumerate(raw):
        event = json.loads(item)
        event["seq"] = first_seq + offset
        event["epoch"] = epoch
        events.append(event)
    return events


# KEYS[1] = the entries (a list), KEYS[2] = the facts (a hash: epoch, ended, attempt, cancel).
# ARGV[1] entry JSON (no seq/epoch), ARGV[2] "1" if terminal, ARGV[3] the writer's epoch,
# ARGV[4] the writer's attempt (0: no fence). With ARGV[5] = "1" the numbered event is also
# PUBLISHed, in the channel layer's JSON message format, to ARGV[6] (the execution's group
# channel) and, if ARGV[7] is not empty, to the monitor group's channel ARGV[7] with the
# members ARGV[8] added. Returns {seq or a Refused code, cancel asked (0/1)}.
APPEND_LUA = """
local facts = redis.call('HMGET', KEYS[2], 'epoch', 'ended', 'attempt', 'cancel')
local cancel = facts[4] and 1 or 0
if facts[1] ~= ARGV[3] then return {-2, cancel} end
if facts[2] then return {-1, cancel} end
local attempt = tonumber(ARGV[4])
if attempt > 0 then
  local newest = tonumber(facts[3] or '0')
  if attempt < newest then return {-3, cancel} end
  if attempt > newest then redis.call('HSET', KEYS[2], 'attempt', attempt) end
end
local n = redis.call('RPUSH', KEYS[1], ARGV[1])
if ARGV[2] == '1' then redis.call('HSET', KEYS[2], 'ended', '1') end
if ARGV[5] == '1' then
  local members = string.sub(ARGV[1], 1, -2) .. ',"seq":' .. n .. ',"epoch":"' .. ARGV[3] .. '"'
  redis.call('PUBLISH', ARGV[6], '{"type":"execution.event","event":' .. members .. '}}')
  if ARGV[7] ~= '' then
    redis.call('PUBLISH', ARGV[7], '{"type":"monitor.event","event":' .. members .. ARGV[8] .. '}}')
  end
end
return {n, cancel}
"""

# Creates a log with its first event: KEYS as above; ARGV[1] entry, ARGV[2] epoch, ARGV[3..] as
# APPEND_LUA's ARGV[5..]. A log that exists is left alone (Refused.EXISTS); a lost one is replaced.
CREATE_LUA = """
if redis.call('HEXISTS', KEYS[2], 'epoch') == 1 then return {-4, 0} end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[2], 'epoch', ARGV[2])
local n = redis.call('RPUSH', KEYS[1], ARGV[1])
if ARGV[3] == '1' then
  local members = string.sub(ARGV[1], 1, -2) .. ',"seq":' .. n .. ',"epoch":"' .. ARGV[2] .. '"'
  redis.call('PUBLISH', ARGV[4], '{"type":"execution.event","event":' .. members .. '}}')
  if ARGV[5] ~= '' then
    redis.call('PUBLISH', ARGV[5], '{"type":"monitor.event","event":' .. members .. ARGV[6] .. '}}')
  end
end
return {n, 0}
"""

# Asks for a cancel: 1 if the log is open (the flag is set), 0 if it has ended or does not exist.
CANCEL_LUA = """
local facts = redis.call('HMGET', KEYS[1], 'epoch', 'ended')
if not facts[1] or facts[2] then return 0 end
redis.call('HSET', KEYS[1], 'cancel', '1')
return 1
"""


# The control poll's question for many runs at once (KEYS: their facts hashes; ARGV: each run's epoch
# and attempt, in KEYS' order): the facts of every log that tells its run something (``has_news``,
# spelled in Lua), flat: the run's index (from 1), epoch, ended, cancel, attempt.
NEWS_LUA = """
local out = {}
for i, key in ipairs(KEYS) do
  local f = redis.call('HMGET', key, 'epoch', 'ended', 'cancel', 'attempt')
  if f[1] ~= ARGV[2 * i - 1] or f[2] or f[3] or tonumber(f[4] or 0) > tonumber(ARGV[2 * i]) then
    out[#out + 1] = i
    out[#out + 1] = f[1] or ''
    out[#out + 1] = f[2] and '1' or ''
    out[#out + 1] = f[3] and '1' or ''
    out[#out + 1] = f[4] or '0'
  end
end
return out
"""


def has_news(facts: Facts, *, epoch: str, attempt: int) -> bool:
    """Whether a log's facts tell the run writing under ``epoch`` as ``attempt`` something: its log is
    gone or replaced, it ended, a newer attempt wrote, or a cancel was asked."""
    return facts.epoch != epoch or facts.ended or facts.cancel_asked or facts.attempt > attempt


def create_args(entry: Entry) -> list[Any]:
    args: list[Any] = [encode(entry.event), entry.epoch]
    if entry.publish is not None:
        args += ["1", *entry.publish]
    return args


def keys(prefix: str, execution_id: str) -> list[str]:
    return [f"{prefix}:{execution_id}", f"{prefix}:{execution_id}:m"]
