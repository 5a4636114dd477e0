"""The metrics themselves: names, help, labels, buckets and multi-process modes, all here.

Every name starts with ``mcp_tools_``. Counters end in ``_total`` on the
wire (prometheus-client adds it). The label sets are closed: ``tool`` (a Tool
row's name), ``status``, ``error_code`` (bounded, ``labels.py``), ``model``,
``type``, ``transport``, ``result``, ``limit``; never a user, an execution id
or a message.

With ``PROMETHEUS_MULTIPROC_DIR`` set, prometheus-client keeps each value in
a file of this process in that directory (it reads the variable when it is
imported, so it must be in the environment, not in Django settings). Files of
a dead process stay: its counts keep adding up, as a counter should. The
connection gauge is ``livesum``: only live processes count, so a process
removes its gauge file when it exits (``atexit``), and a new process removes
any left under its own pid by a process that was killed.
"""

from __future__ import annotations

import atexit
import os

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.multiprocess import mark_process_dead

MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def _prepare_multiprocess_dir() -> None:
    """Create the directory if needed; drop live-gauge files a killed process with our pid left."""
    if not MULTIPROC_DIR:
        return
    os.makedirs(MULTIPROC_DIR, mode=0o700, exist_ok=True)
    mark_process_dead(os.getpid(), MULTIPROC_DIR)
    # The pid at exit, not now: a forked child that exits normally removes its own files.
    atexit.register(lambda: mark_process_dead(os.getpid(), MULTIPROC_DIR))


_prepare_multiprocess_dir()

TRANSPORTS = ("websocket", "sse", "mcp")
LIMITS = ("concurrent", "per_minute", "ws_connections")

EXECUTIONS_STARTED = Counter(
    "mcp_tools_executions_started", "Executions recorded, from any entry point (cache answers included).", ["tool"]
)
EXECUTIONS_ENDED = Counter(
    "mcp_tools_executions_ended",
    "Executions ended, by status (completed, failed, cancelled) and error code (failed ones; empty otherwise).",
    ["tool", "status", "error_code"],
)
QUEUE_WAIT = Histogram(
    "mcp_tools_execution_queue_wait_seconds",
    "From the request to the first claim by a worker, for executions that went through the queue.",
    ["tool"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
DURATION = Histogram(
    "mcp_tools_execution_duration_seconds",
    "The terminal event's duration_ms, by status; answers from the cache are left out.",
    ["tool", "status"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1800),
)
FIRST_TOKEN = Histogram(
    "mcp_tools_time_to_first_token_seconds",
    "From the request to the first text the run streamed (once per execution; cache answers left out).",
    ["tool"],
    buckets=(0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 20, 30, 60),
)
TOKENS = Counter(
    "mcp_tools_llm_tokens",
    "Tokens the provider reported, on every ending (failed and cancelled runs too), by type (input, output).",
    ["tool", "model", "type"],
)
CONNECTIONS = Gauge(
    "mcp_tools_connections",
    "Open client connections: WebSockets, event streams, requests to /mcp.",
    ["transport"],
    multiprocess_mode="livesum",
)
DELTAS_RELAYED = Counter(
    "mcp_tools_deltas_relayed", "execution.delta events sent to clients, by transport.", ["transport"]
)
LOG_LAG = Histogram(
    "mcp_tools_event_log_lag_events",
    "On a follower's read of the event log after its first (idle poll, gap fill): events the log held beyond "
    "what the follower had delivered. 0 while the live channel keeps up.",
    buckets=(0, 1, 2, 5, 10, 25, 50, 100, 250, 1000),
)
LOG_APPEND = Histogram(
    "mcp_tools_event_log_append_seconds",
    "One batch of a worker's outbox appended to the event log (and, with Redis, published): its round trip.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)
CACHE_LOOKUPS = Counter(
    "mcp_tools_cache_lookups", "Result-cache lookups of cacheable tools, by result (hit, miss).", ["tool", "result"]
)
RATE_LIMIT_REFUSALS = Counter(
    "mcp_tools_rate_limit_refusals",
    "Requests refused by a per-user limit: concurrent executions, executions per minute, WebSocket connections.",
    ["limit"],
)

# Series that exist from the start, so dashboards show 0 rather than no data.
for _transport in TRANSPORTS:
    CONNECTIONS.labels(transport=_transport)
    DELTAS_RELAYED.labels(transport=_transport)
for _limit in LIMITS:
    RATE_LIMIT_REFUSALS.labels(limit=_limit)
