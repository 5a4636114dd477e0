"""Benchmark clients: many real WebSocket connections, spread over processes.

Each ``Job`` is one connection. A *service* job follows PROTOCOL.md: it sends
``execute`` (``executions`` times, one after the other) and reads
``execution.accepted``, the deltas and the terminal event; a *relay* job
subscribes to one stream of the reference relay (``relay.py``) and reads
``tokens`` frames. Both parse the tokens' ``"<i>:<t_ns> "`` stamps::

    result = run_clients(jobs, processes=2, timeout_s=60, on_connected=start_producer)

What every token tells: its latency (receive time − stamp, one machine clock,
so a token coalesced into a later delta counts the wait too), whether its
index follows the previous one (else lost or reordered). Events tell seq gaps.
Connections open first (``on_connected(t0)`` is called once all are up), and
each job starts at ``t0 + offset_s``.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import websockets

TERMINAL = frozenset({"execution.completed", "execution.failed", "execution.cancelled"})
HANDSHAKES_AT_ONCE = 50
GO_DELAY_S = 0.5


@dataclass
class Job:
    kind: str  # "service" | "relay" | "idle"
    url: str
    token: str = ""
    stream: str = ""
    offset_s: float = 0.0
    executions: int = 1
    tokens: int = 200


@dataclass
class Tally:
    """What the clients saw, merged over all jobs and processes."""

    latencies_ms: list[float] = field(default_factory=list)
    accepted_ms: list[float] = field(default_factory=list)
    first_delta_ms: list[float] = field(default_factory=list)
    tokens: int = 0
    messages: int = 0
    executions: int = 0
    completed: int = 0
    lost_tokens: int = 0
    reordered: int = 0
    seq_gaps: int = 0
    text_mismatches: int = 0
    errors: list[str] = field(default_factory=list)
    first_stamp_ns: int = 0
    last_stamp_ns: int = 0
    last_recv_ns: int = 0
    cpu_s: float = 0.0  # the client processes' own CPU time, from the go signal on
    pids: list[int] = field(default_factory=list)

    def merge(self, other: Tally) -> None:
        for name in ("latencies_ms", "accepted_ms", "first_delta_ms", "errors", "pids"):
            getattr(self, name).extend(getattr(other, name))
        for name in (
            "tokens",
            "messages",
            "executions",
            "completed",
            "lost_tokens",
            "reordered",
            "seq_gaps",
            "text_mismatches",
            "cpu_s",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        stamps = [s for s in (self.first_stamp_ns, other.first_stamp_ns) if s]
        self.first_stamp_ns = min(stamps) if stamps else 0
        self.last_stamp_ns = max(self.last_stamp_ns, other.last_stamp_ns)
        self.last_recv_ns = max(self.last_recv_ns, other.last_recv_ns)


class TokenCheck:
    """Per stream: stamps to latencies, indices to lost / reordered counts."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self.next_index = 0
        self.seen = 0
        self.closed = False

    def take(self, text: str, now_ns: int) -> None:
        tally = self.tally
        for token in text.split():
            index, _, stamp = token.partition(":")
            index, stamp_ns = int(index), int(stamp)
            if index < self.next_index:
                tally.reordered += 1
            self.next_index = max(self.next_index, index + 1)
            self.seen += 1
            tally.latencies_ms.append((now_ns - stamp_ns) / 1e6)
            if not tally.first_stamp_ns or stamp_ns < tally.first_stamp_ns:
                tally.first_stamp_ns = stamp_ns
            tally.last_stamp_ns = max(tally.last_stamp_ns, stamp_ns)

    def restart(self) -> None:
        """A retry streams the text again from the first token."""
        self.next_index = 0
        self.seen = 0

    def close(self, expected: int) -> None:
        if self.closed:
            return
        self.closed = True
        self.tally.tokens += self.seen
        self.tally.lost_tokens += max(0, expected - self.seen)


async def _service(job: Job, ws, t0: float, tally: Tally) -> None:
    await _sleep_until(t0 + job.offset_s)
    for number in range(job.executions):
        sent_ns = time.time_ns()
        await ws.send(
            json.dumps(
                {
                    "type": "execute",
                    "tool": "generate_report",
                    "use_cache": False,
                    "parameters": {"data": {"job": job.stream, "n": number}},
                    "request_id": "b",
                }
            )
        )
        tally.executions += 1
        await _one_execution(job, ws, sent_ns, tally)


async def _one_execution(job: Job, ws, sent_ns: int, tally: Tally) -> None:
    check = TokenCheck(tally)
    try:
        await _read_execution(job, ws, sent_ns, tally, check)
    finally:
        # A stream cut short (the case's timeout) counts its missing tokens as lost.
        check.close(job.tokens)


async def _read_execution(job: Job, ws, sent_ns: int, tally: Tally, check: TokenCheck) -> None:
    last_seq, texts, first = 0, [], True
    while True:
        raw = await ws.recv()
        now = time.time_ns()
        tally.last_recv_ns = now
        message = json.loads(raw)
        kind = message["type"]
        if kind == "execution.accepted":
            tally.accepted_ms.append((now - sent_ns) / 1e6)
            continue
        if kind == "error":
            tally.errors.append(f"{message.get('code')}: {message.get('message')}")
            return
        seq = message["seq"]
        if seq <= last_seq:
            tally.reordered += 1
        elif seq > last_seq + 1:
            tally.seq_gaps += seq - last_seq - 1
        last_seq = max(last_seq, seq)
        if kind == "execution.delta":
            tally.messages += 1
            if first:
                tally.first_delta_ms.append((now - sent_ns) / 1e6)
                first = False
            texts.append(message["text"])
            check.take(message["text"], now)
        elif kind == "execution.status" and message["status"] == "retrying":
            tally.errors.append(f"retrying: {message.get('reason')}")
            texts = []
            check.restart()
        elif kind in TERMINAL:
            if kind == "execution.completed":
                tally.completed += 1
                tally.text_mismatches += "".join(texts) != message["result"]["report"]
            else:
                tally.errors.append(f"{kind}: {message.get('error')}")
            return


async def _relay(job: Job, ws, t0: float, tally: Tally) -> None:
    check, last_seq = TokenCheck(tally), 0
    tally.executions += 1
    try:
        while check.seen < job.tokens:
            raw = await ws.recv()
            now = time.time_ns()
            tally.last_recv_ns = now
            message = json.loads(raw)
            tally.messages += 1
            seq = message["seq"]
            if seq <= last_seq:
                tally.reordered += 1
            elif seq > last_seq + 1:
                tally.seq_gaps += seq - last_seq - 1
            last_seq = max(last_seq, seq)
            check.take(message["text"], now)
        tally.completed += 1
    finally:
        check.close(job.tokens)


async def _sleep_until(when: float) -> None:
    delay = when - time.time()
    if delay > 0:
        await asyncio.sleep(delay)


async def _connect(job: Job, gate: asyncio.Semaphore):
    headers = {"Authorization": f"Token {job.token}"} if job.token else {}
    async with gate:
        ws = await websockets.connect(
            job.url,
            additional_headers=headers,
            compression=None,
            max_size=2**24,
            open_timeout=60,
            ping_interval=None,
            max_queue=None,
        )
        if job.kind == "relay":
            await ws.send(json.dumps({"stream": job.stream}))
            await ws.recv()  # {"type": "ready"}
        else:  # a pong proves the connection is authenticated and its consumer is up
            await ws.send('{"type":"ping"}')
            pong = json.loads(await ws.recv())
            if pong.get("type") != "pong":
                raise RuntimeError(f"expected pong, got {pong}")
    return ws


async def _idle(job: Job, ws, t0: float, tally: Tally) -> None:
    """Just holds the connection open (memory per idle connection)."""


async def _process_main(jobs: list[Job], conn, timeout_s: float) -> Tally:
    import os

    tally = Tally(pids=[os.getpid()])
    gate = asyncio.Semaphore(HANDSHAKES_AT_ONCE)
    sockets = await asyncio.gather(*(_connect(job, gate) for job in jobs), return_exceptions=True)
    failed = [repr(s) for s in sockets if isinstance(s, BaseException)]
    conn.send(("connected", failed))
    t0 = await asyncio.get_running_loop().run_in_executor(None, conn.recv)
    cpu_at_go = time.process_time()
    runner = {"service": _service, "relay": _relay, "idle": _idle}
    tasks = [
        asyncio.create_task(runner[job.kind](job, ws, t0, tally))
        for job, ws in zip(jobs, sockets, strict=False)
        if not isinstance(ws, BaseException)
    ]
    done, pending = await asyncio.wait(tasks, timeout=timeout_s + max(0.0, t0 - time.time()))
    for task in pending:
        task.cancel()
    tally.errors.extend(failed)
    if pending:
        tally.errors.append(f"timeout: {len(pending)} streams unfinished")
    tally.errors.extend(repr(t.exception()) for t in done if t.exception() is not None)
    tally.cpu_s = time.process_time() - cpu_at_go
    await asyncio.gather(*(ws.close() for ws in sockets if not isinstance(ws, BaseException)), return_exceptions=True)
    return tally


def _process_entry(jobs: list[Job], conn, timeout_s: float) -> None:
    tally = asyncio.run(_process_main(jobs, conn, timeout_s))
    conn.send(("done", tally))


def run_clients(
    jobs: list[Job], *, processes: int, timeout_s: float, on_connected: Callable[[float], None] | None = None
) -> Tally:
    """Run the jobs over ``processes`` processes; returns the merged tally.

    ``on_connected(t0)`` runs once every connection is open, before ``t0``.
    """
    context = multiprocessing.get_context("spawn")
    shares = [jobs[i::processes] for i in range(processes)]
    shares = [share for share in shares if share]
    pipes, procs = [], []
    for share in shares:
        parent, child = context.Pipe()
        proc = context.Process(target=_process_entry, args=(share, child, timeout_s), daemon=True)
        proc.start()
        pipes.append(parent)
        procs.append(proc)
    connect_errors = []
    for parent in pipes:
        _, failed = parent.recv()
        connect_errors.extend(failed)
    t0 = time.time() + GO_DELAY_S
    if on_connected:
        on_connected(t0)
    for parent in pipes:
        parent.send(t0)
    total = Tally()
    for parent, proc in zip(pipes, procs, strict=False):
        _, tally = parent.recv()
        total.merge(tally)
        proc.join(30)
    return total
