"""What one case measures, and how its numbers are computed.

A *case* is a load shape (streams × tokens at a rate); ``run_case`` runs it
against one target — the service (a running ``Server``) or the reference
relay — and returns a flat dict of figures::

    figures = run_case(CASES["100x50"], target, stack, sampler)
    figures["lat_p99_ms"], figures["keep_up"], figures["cpu_asgi_per_1k"]

``keep_up`` is delivered over offered rate: the nominal schedule's span
(ramp + tokens / rate) over the span until the clients had every token, ×
the fraction delivered (1.0 = kept up; the target is ≥ 0.99). It is against
the *schedule*, not against when the fake API managed to write the tokens:
on a saturated machine the fake API's own pacing slips too
(``source_keep_up`` is that softer figure).
"""

from __future__ import annotations

import contextlib
import json
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import psutil

from .clients import Job, Tally, run_clients
from .stack import ROOT, BenchStack, Server


@dataclass(frozen=True)
class Case:
    name: str
    streams: int
    tokens: int
    rate: float  # tokens/s per stream; 0 = as fast as the source can
    ramp_s: float = 0.0  # stream starts spread evenly over this
    executions: int = 1  # per client, one after the other
    relay: bool = True  # also run on the reference relays
    sdk: bool = False  # also consumed by the bare SDK (bench/sdk_consumer.py)
    scale: bool = False  # also run on the scaling variants (2 workers, 2 daphnes)
    timeout_s: float = 120.0


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


class CpuSampler:
    """CPU seconds (user + system) of named processes, children included."""

    def __init__(self) -> None:
        self.procs: dict[str, list[psutil.Process]] = {}

    def watch(self, name: str, *pids: int) -> None:
        self.procs.setdefault(name, []).extend(psutil.Process(pid) for pid in pids if pid)

    def forget(self, name: str) -> None:
        self.procs.pop(name, None)

    def read(self) -> dict[str, float]:
        return {name: sum(_cpu(p) for p in procs) for name, procs in self.procs.items()}


def _cpu(proc: psutil.Process) -> float:
    """User + system time of ``proc``, of its children that have ended (reaped: PostgreSQL's backends,
    a script tool's process) and of those still running."""
    try:
        total = sum(proc.cpu_times()[:4])
        children = proc.children(recursive=True)
    except psutil.Error:
        return 0.0
    for child in children:
        # A child that ended since it was listed is left out of this reading only (its time moves to the
        # parent's reaped children's once reaped); it used to make the whole reading 0, and a case's
        # PostgreSQL CPU negative.
        with contextlib.suppress(psutil.Error):
            total += sum(child.cpu_times()[:2])
    return total


def run_case(
    case: Case,
    *,
    stack: BenchStack,
    server: Server | None,
    relay_urls: list[str],
    sampler: CpuSampler,
    client_processes: int,
    rss_pids: tuple[int, ...] = (),
) -> dict:
    """Run ``case`` on ``server`` (the service) or, with ``server=None``, on a reference relay
    (``relay_urls``: the raw relay's or the raw daphne relay's ports; clients split between them).

    ``rss_pids``: processes (the workers) whose RSS is read when every client is connected and
    then every 0.25 s until the case ends (``rss_before_mb`` / ``rss_peak_mb``, summed over them).
    """
    stamp = {"tokens": case.tokens, "delay_ms": 1000 / case.rate if case.rate else 0, "stamp": True}
    if server is not None:
        stack.fake_control("/_control/reset", {})
        stack.fake_control("/_control/default", stamp)
    jobs = _jobs(case, stack, server, relay_urls)
    producer: list[subprocess.Popen] = []
    rss = RssWatch(rss_pids, count_running=server is not None)

    def connected(t0: float) -> None:
        if server is None:
            producer.append(_start_producer(case, stack, t0))
        before.update(sampler.read())
        window.append(time.time())
        rss.start()

    before: dict[str, float] = {}
    window: list[float] = []
    t_wall = time.time()
    try:
        tally = run_clients(
            jobs, processes=min(client_processes, len(jobs)), timeout_s=case.timeout_s, on_connected=connected
        )
    finally:
        rss.stop()
    after = {**sampler.read(), "clients": tally.cpu_s}
    before["clients"] = 0.0
    window.append(time.time())
    if producer:
        out, _ = producer[0].communicate(timeout=60)
        after["producer"], before["producer"] = float(out.split()[-1]), 0.0  # "published N cpu S"
    figures = summarize(case, tally, t_go=t_wall)
    figures.update(rss.figures())
    if len(window) == 2:
        figures["cpu_window_s"] = window[1] - window[0]  # the span the CPU figures were read over
    _cpu_figures(figures, before, after, tally.tokens)
    return figures


def _cpu_figures(figures: dict, before: dict[str, float], after: dict[str, float], tokens: int) -> None:
    """CPU seconds of each process over the case, and per 1,000 delivered tokens."""
    for name, seconds in after.items():
        if name in before:
            figures[f"cpu_{name}_s"] = seconds - before[name]
            if tokens:
                figures[f"cpu_{name}_per_1k"] = (seconds - before[name]) / tokens * 1000


class RssWatch:
    """Summed RSS of some processes: when started, and the peak until stopped."""

    def __init__(self, pids: tuple[int, ...], count_running: bool = False) -> None:
        self.procs = [psutil.Process(pid) for pid in pids]
        self.before = self.peak = 0
        self.count_running = count_running and bool(pids)
        self.peak_running = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def read(self) -> int:
        try:
            return sum(p.memory_info().rss for p in self.procs)
        except psutil.Error:
            return 0

    def start(self) -> None:
        if not self.procs:
            return
        self.before = self.peak = self.read()

        def sample() -> None:
            conn = _running_counter() if self.count_running else None
            try:
                while not self._stop.wait(0.25):
                    self.peak = max(self.peak, self.read())
                    if conn is not None:
                        self.peak_running = max(self.peak_running, conn.execute(RUNNING_SQL).fetchone()[0])
            finally:
                if conn is not None:
                    conn.close()

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def figures(self) -> dict:
        if not self.procs or not self.before:
            return {}
        figures = {"rss_before_mb": self.before / 2**20, "rss_peak_mb": self.peak / 2**20}
        if self.count_running:
            figures["peak_running"] = self.peak_running
        return figures


# Executions being run at this moment (read every 0.25 s during a case: how many streams a worker held at once).
RUNNING_SQL = "SELECT count(*) FROM mcp_tools_toolexecution WHERE status = 'running'"


def _running_counter():
    import psycopg

    from .stack import DATABASE, PG_URL

    return psycopg.connect(f"{PG_URL}/{DATABASE}", autocommit=True)


def run_sdk_case(case: Case, *, stack: BenchStack, sampler: CpuSampler, raw: bool = False) -> dict:
    """The same stream shapes consumed by the bare SDK in one process (``bench/sdk_consumer.py``)."""
    stack.fake_control("/_control/reset", {})
    stack.fake_control(
        "/_control/default", {"tokens": case.tokens, "delay_ms": 1000 / case.rate if case.rate else 0, "stamp": True}
    )
    before = sampler.read()
    t_go = time.time()
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.sdk_consumer",
            "--base-url",
            stack.fake_url,
            "--streams",
            str(case.streams),
            "--tokens",
            str(case.tokens),
            "--ramp",
            str(case.ramp_s),
            *(["--raw"] if raw else []),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=case.timeout_s + 60,
    )
    after = sampler.read()
    if out.returncode:
        raise RuntimeError(f"sdk_consumer failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    expected = case.streams * case.tokens
    figures = {
        "tokens_expected": expected,
        "tokens": result["tokens"],
        "sse_events": result["events"],
        "executions": case.streams,
        "completed": case.streams - result["error_count"],
        "lost": result["lost"],
        "reordered": result["reordered"],
        "text_mismatches": 0,
        "errors": result["error_count"],
        "error_sample": result["errors"],
        "lat_p50_ms": result["lat_p50_ms"],
        "lat_p99_ms": result["lat_p99_ms"],
        "events_per_token": result["events"] / result["tokens"] if result["tokens"] else None,
    }
    span = (result["last_recv_ns"] - result["first_stamp_ns"]) / 1e9
    if span > 0:
        figures["tokens_per_s"] = result["tokens"] / span
        figures["keep_up"] = keep_up(case, figures["tokens_per_s"], expected)
    figures["wall_s"] = figures["cpu_window_s"] = time.time() - t_go
    after["sdk"], before["sdk"] = result["cpu_s"], 0.0
    _cpu_figures(figures, before, after, result["tokens"])
    return figures


def _jobs(case: Case, stack: BenchStack, server: Server | None, relay_urls: list[str]) -> list[Job]:
    jobs = []
    urls = server.ws_urls if server is not None else relay_urls
    for index in range(case.streams):
        offset = case.ramp_s * index / max(case.streams, 1)
        url = urls[index % len(urls)]
        if server is None:
            jobs.append(Job("relay", url, stream=str(index), offset_s=offset, tokens=case.tokens))
        else:
            jobs.append(
                Job(
                    "service",
                    url + "/ws/executions/",
                    token=stack.tokens[index],
                    stream=str(index),
                    offset_s=offset,
                    executions=case.executions,
                    tokens=case.tokens,
                )
            )
    return jobs


def _start_producer(case: Case, stack: BenchStack, t0: float) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.relay",
            "produce",
            "--redis",
            stack.redis_url,
            "--prefix",
            f"{stack.namespace}:relay:",
            "--streams",
            str(case.streams),
            "--tokens",
            str(case.tokens),
            "--rate",
            str(case.rate),
            "--ramp",
            str(case.ramp_s),
            "--start-at",
            str(t0),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )


def summarize(case: Case, tally: Tally, *, t_go: float) -> dict:
    expected = case.streams * case.executions * case.tokens
    emit_span = (tally.last_stamp_ns - tally.first_stamp_ns) / 1e9
    deliver_span = (tally.last_recv_ns - tally.first_stamp_ns) / 1e9
    figures = {
        "tokens_expected": expected,
        "tokens": tally.tokens,
        "messages": tally.messages,
        "executions": tally.executions,
        "completed": tally.completed,
        "lost": tally.lost_tokens + tally.seq_gaps,
        "reordered": tally.reordered,
        "text_mismatches": tally.text_mismatches,
        "errors": len(tally.errors),
        "error_sample": tally.errors[:3],
        "lat_p50_ms": percentile(tally.latencies_ms, 50),
        "lat_p99_ms": percentile(tally.latencies_ms, 99),
        "accepted_p50_ms": percentile(tally.accepted_ms, 50),
        "accepted_p99_ms": percentile(tally.accepted_ms, 99),
        "first_delta_p50_ms": percentile(tally.first_delta_ms, 50),
        "first_delta_p99_ms": percentile(tally.first_delta_ms, 99),
        "tokens_per_delta": tally.tokens / tally.messages if tally.messages else None,
    }
    if deliver_span > 0:
        figures["tokens_per_s"] = tally.tokens / deliver_span
        figures["msgs_per_s"] = tally.messages / deliver_span
        figures["source_keep_up"] = (emit_span / deliver_span) * (tally.tokens / expected) if expected else None
        figures["keep_up"] = keep_up(case, figures["tokens_per_s"], expected)
    if tally.last_recv_ns:
        figures["wall_s"] = max(1e-9, tally.last_recv_ns / 1e9 - t_go)
        figures["executions_per_s"] = tally.completed / max(1e-9, tally.last_recv_ns / 1e9 - t_go)
    return figures


def keep_up(case: Case, tokens_per_s: float | None, expected: int) -> float | None:
    """Delivered over offered: None for as-fast-as-possible and back-to-back cases."""
    if not case.rate or case.executions > 1 or not tokens_per_s:
        return None
    nominal_span_s = case.ramp_s * (case.streams - 1) / max(case.streams, 1) + (case.tokens - 1) / case.rate
    return nominal_span_s * tokens_per_s / expected


def median_of(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if isinstance(r.get(key), (int, float))]
    return statistics.median(values) if values else None


def measure_idle_memory(server: Server, stack: BenchStack, *, connections: int, client_processes: int) -> dict:
    """RSS growth of the ASGI server per open, authenticated, idle connection."""
    proc = psutil.Process(server.asgi.pid)
    warm = [Job("idle", server.ws_url + "/ws/executions/", token=stack.tokens[i]) for i in range(20)]
    run_clients(warm, processes=1, timeout_s=10)  # first-use costs (imports, caches) are not per connection
    time.sleep(0.5)
    rss: dict[str, int] = {"before": proc.memory_info().rss}

    def connected(_t0: float) -> None:
        time.sleep(1.0)
        rss["after"] = proc.memory_info().rss

    jobs = [
        Job("idle", server.ws_url + "/ws/executions/", token=stack.tokens[i % len(stack.tokens)])
        for i in range(connections)
    ]
    run_clients(jobs, processes=client_processes, timeout_s=10, on_connected=connected)
    return {
        "idle_connections": connections,
        "rss_before_mb": rss["before"] / 2**20,
        "rss_after_mb": rss["after"] / 2**20,
        "kib_per_idle_connection": (rss["after"] - rss["before"]) / connections / 1024,
    }
