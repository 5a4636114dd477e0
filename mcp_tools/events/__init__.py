"""Execution events: their shape, their log, and their way out. Generation, not delivery.

    schema.py      event constructors, terminal/monitor types, group names (the one place for them)
    log.py         the log's contract: entries, seq, epoch, the append scripts
    backends.py    the log in Redis (production) or memory (embedded default): get_event_log()
    coalesce.py    text pieces into deltas, one per window
    outbox.py      a worker process's appends, batched per turn of its event loop
    dispatch.py    how logged events reach the channel layer
    publisher.py   one run's events on the worker (async): text, events, the terminal event
    writer.py      events written from synchronous service code

Delivery — following an execution from a connection — is ``mcp_tools/delivery.py``.
"""

from .backends import EventLog, get_event_log
from .log import Appended, Entry, Head, Refused, Snapshot, new_epoch
from .schema import (
    MONITOR_GROUP,
    MONITOR_TYPES,
    TERMINAL_TYPES,
    Event,
    cancelled_event,
    completed_event,
    delta_event,
    execution_group,
    failed_event,
    is_terminal,
    status_event,
)

__all__ = [
    "MONITOR_GROUP",
    "MONITOR_TYPES",
    "TERMINAL_TYPES",
    "Appended",
    "Entry",
    "Event",
    "EventLog",
    "Head",
    "Refused",
    "Snapshot",
    "cancelled_event",
    "completed_event",
    "delta_event",
    "execution_group",
    "failed_event",
    "get_event_log",
    "is_terminal",
    "new_epoch",
    "status_event",
]
