"""Script tools next to in-process tools: the 10,000-line relay, and what starting a process costs.

    .venv/bin/python bench/tools.py                    # 10,000 lines; 5 rounds of 40 runs of each tool
    .venv/bin/python bench/tools.py --rounds 1 --runs 5  # development

The production topology (``bench/stack.py``: PostgreSQL database ``mcp_bench``,
Redis database 14 under a namespace of its own), with daphne and one worker
started by the production command (``celery -A config worker``: the engine's
pool), loading ``bench/gantz_tools.yaml`` (``lines``: ``seq`` in a process)
and ``bench/tool_app`` (``py_lines``: the same lines from a Python tool).
One WebSocket client, one execution at a time:

* **relay**: ``lines``, ``lines_loop`` (a shell loop: one write a line) and
  ``py_lines`` with n = 10,000: every line must
  arrive once and in order, the deltas' seq without a gap, and their text
  must equal ``result.output``;
* **start-up**: n = 1, ``--runs`` executions of one tool then of the other,
  in alternating order over ``--rounds``: the median time from sending
  ``execute`` to the first delta and to ``execution.completed``, and the CPU
  the worker spent per execution (its own and its reaped children's: the
  script's process) and daphne's.

Writes ``test-artifacts/bench/tools.md`` (the table in docs/benchmarks.md) and
``tools.json``; prints the table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from websockets.sync.client import connect  # noqa: E402

from bench.report import machine  # noqa: E402
from bench.stack import LOG_DIR, ROOT, STARTUP_TIMEOUT_S, BenchStack, Proc, free_port, http_ok, spawn, wait_until  # noqa: E402

TOOLS = {"script": "lines", "python": "py_lines"}
# lines_loop writes its lines one by one (a shell loop), where seq writes them in blocks.
RELAYED = ("lines", "lines_loop", "py_lines")
TERMINAL = {"execution.completed", "execution.failed", "execution.cancelled"}


class ToolsBenchStack(BenchStack):
    """The benchmark's stack, loading the two tools (and using the offline provider: no LLM here)."""

    def base_env(self) -> dict[str, str]:
        return {
            **super().base_env(),
            "GANTZ_CONFIG": str(ROOT / "bench" / "gantz_tools.yaml"),
            "MCP_EXTRA_APPS": "bench.tool_app",
            "LLM_PROVIDER": "offline",
        }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Script tools vs in-process tools (docs/benchmarks.md).")
    parser.add_argument("--lines", type=int, default=10_000, help="lines relayed in the relay check")
    parser.add_argument("--runs", type=int, default=40, help="executions of each tool per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, alternating which tool goes first")
    parser.add_argument("--out", default=str(LOG_DIR))
    return parser.parse_args()


def start_service(stack: BenchStack) -> tuple[Proc, Proc, int]:
    env = stack.base_env()
    port = free_port()
    asgi = spawn(
        "tools-daphne",
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "-v", "0", "config.asgi:application"],
        env,
    )
    wait_until(
        lambda: http_ok(f"http://127.0.0.1:{port}/health/") or not asgi.alive(),
        timeout=STARTUP_TIMEOUT_S,
        what="daphne",
    )
    worker = spawn(
        "tools-worker",
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-n",
            f"{stack.namespace}-tools@%h",
            "--without-mingle",
            "--without-gossip",
            "--loglevel=INFO",
        ],
        env,
    )
    wait_until(lambda: "ready." in worker.log() or not worker.alive(), timeout=STARTUP_TIMEOUT_S, what="celery worker")
    for proc in (asgi, worker):
        if not proc.alive():
            raise RuntimeError(f"{proc.name} died:\n{proc.log()[-3000:]}")
    return asgi, worker, port


def execute(ws, tool: str, n: int) -> dict:
    """One execution, followed to its end; times from sending ``execute``."""
    sent = time.perf_counter()
    ws.send(json.dumps({"type": "execute", "tool": tool, "parameters": {"n": n}, "use_cache": False}))
    events, first_delta_s = [], None
    while True:
        message = json.loads(ws.recv(timeout=120))
        if message["type"] == "error":
            raise RuntimeError(message)
        if message["type"] == "execution.delta" and first_delta_s is None:
            first_delta_s = time.perf_counter() - sent
        events.append(message)
        if message["type"] in TERMINAL:
            return {"events": events, "first_delta_s": first_delta_s, "completed_s": time.perf_counter() - sent}


def relay_check(ws, tool: str, lines: int) -> dict:
    """``lines`` lines through a real WebSocket: each once, in order, and the joined deltas equal the result."""
    run = execute(ws, tool, lines)
    events = run["events"]
    end = events[-1]
    numbered = [e for e in events if e["type"] != "execution.accepted"]
    deltas = [e["text"] for e in events if e["type"] == "execution.delta"]
    joined = "".join(deltas)
    received = joined.splitlines()
    expected = [f"line {i:06d}" for i in range(1, lines + 1)]
    missing = len(set(expected) - set(received))
    return {
        "tool": tool,
        "status": end["type"],
        "lines_expected": lines,
        "lines_received": len(received),
        "lost": missing,
        "duplicated": len(received) - len(set(received)),
        "reordered": sum(1 for a, b in zip(received, received[1:], strict=False) if a >= b),
        "seq_gaps": sum(1 for a, b in zip(numbered, numbered[1:], strict=False) if b["seq"] != a["seq"] + 1),
        "joined_equals_result": end["type"] == "execution.completed" and joined == end["result"]["output"],
        "deltas": len(deltas),
        "bytes": len(joined.encode()),
        "seconds": run["completed_s"],
    }


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system + times.children_user + times.children_system


def startup_block(ws, tool: str, runs: int, worker: psutil.Process, asgi: psutil.Process) -> dict:
    before = cpu_seconds(worker), cpu_seconds(asgi)
    timings = [execute(ws, tool, 1) for _ in range(runs)]
    after = cpu_seconds(worker), cpu_seconds(asgi)
    bad = [t["events"][-1] for t in timings if t["events"][-1]["type"] != "execution.completed"]
    if bad:
        raise RuntimeError(f"{tool}: {bad[0]}")
    return {
        "first_delta_s": [t["first_delta_s"] for t in timings],
        "completed_s": [t["completed_s"] for t in timings],
        "worker_cpu_s": after[0] - before[0],
        "asgi_cpu_s": after[1] - before[1],
        "runs": runs,
    }


def summarize(blocks: list[dict]) -> dict:
    first = [s for block in blocks for s in block["first_delta_s"]]
    done = [s for block in blocks for s in block["completed_s"]]
    runs = sum(block["runs"] for block in blocks)
    return {
        "runs": runs,
        "first_delta_ms_p50": statistics.median(first) * 1000,
        "completed_ms_p50": statistics.median(done) * 1000,
        "first_delta_ms_p90": statistics.quantiles(first, n=10)[-1] * 1000,
        "completed_ms_p90": statistics.quantiles(done, n=10)[-1] * 1000,
        "worker_cpu_ms_per_run": sum(b["worker_cpu_s"] for b in blocks) / runs * 1000,
        "asgi_cpu_ms_per_run": sum(b["asgi_cpu_s"] for b in blocks) / runs * 1000,
    }


def render(results: dict) -> str:
    m = results["machine"]
    rows = [
        f"Machine: {m['nproc']} cores ({m['cpu']}), {m['ram_gib']} GiB RAM, Python {m['python']}, "
        f"{m['redis']}; load average at the end {tuple(round(x, 1) for x in m['loadavg_at_end'])}; "
        f"wall {results['wall_s']:.0f} s.",
        "",
        f"**Relay** ({results['args']['lines']:,} lines, one execution, real WebSocket):",
        "",
        "| tool | status | lines received | lost | duplicated | reordered | seq gaps | joined = result.output "
        "| deltas | bytes | seconds |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for relay in results["relay"]:
        rows.append(
            f"| {relay['tool']} | {relay['status']} | {relay['lines_received']:,} | {relay['lost']} | "
            f"{relay['duplicated']} | {relay['reordered']} | {relay['seq_gaps']} | "
            f"{'yes' if relay['joined_equals_result'] else 'NO'} | {relay['deltas']:,} | {relay['bytes']:,} | "
            f"{relay['seconds']:.2f} |"
        )
    args = results["args"]
    rows += [
        "",
        f"**Start-up** (n = 1; {args['rounds']} rounds × {args['runs']} runs of each, alternating; "
        "medians, p90 in brackets; CPU per execution):",
        "",
        "| tool | runs | execute → first delta (ms) | execute → completed (ms) | worker CPU (ms) | daphne CPU (ms) |",
        "|---|---|---|---|---|---|",
    ]
    for kind, tool in TOOLS.items():
        s = results["startup"][kind]
        rows.append(
            f"| {tool} ({kind}) | {s['runs']} | {s['first_delta_ms_p50']:.1f} ({s['first_delta_ms_p90']:.1f}) | "
            f"{s['completed_ms_p50']:.1f} ({s['completed_ms_p90']:.1f}) | {s['worker_cpu_ms_per_run']:.1f} | "
            f"{s['asgi_cpu_ms_per_run']:.1f} |"
        )
    script, python = results["startup"]["script"], results["startup"]["python"]
    rows += [
        "",
        f"A script tool adds {script['first_delta_ms_p50'] - python['first_delta_ms_p50']:.1f} ms to the "
        f"first delta, {script['completed_ms_p50'] - python['completed_ms_p50']:.1f} ms to completion and "
        f"{script['worker_cpu_ms_per_run'] - python['worker_cpu_ms_per_run']:.1f} ms of worker CPU per "
        "execution (medians).",
    ]
    return "\n".join(rows) + "\n"


def main() -> None:
    args = parse_args()
    started = time.time()
    stack = ToolsBenchStack(redis_db=14).setup(users=1)
    asgi = worker = None
    try:
        asgi, worker, port = start_service(stack)
        worker_process, asgi_process = psutil.Process(worker.pid), psutil.Process(asgi.pid)
        with connect(
            f"ws://127.0.0.1:{port}/ws/executions/",
            additional_headers={"Authorization": f"Token {stack.tokens[0]}"},
            max_size=2**24,
            open_timeout=10,
        ) as ws:
            for tool in TOOLS.values():  # warm-up: imports, connection pools, first process
                execute(ws, tool, 1)
            relay = [relay_check(ws, tool, args.lines) for tool in RELAYED]
            for figures in relay:
                print(f"relay {figures}", flush=True)
            blocks: dict[str, list[dict]] = {kind: [] for kind in TOOLS}
            for round_number in range(args.rounds):
                order = list(TOOLS.items()) if round_number % 2 == 0 else list(reversed(TOOLS.items()))
                for kind, tool in order:
                    blocks[kind].append(startup_block(ws, tool, args.runs, worker_process, asgi_process))
                    print(f"round {round_number + 1}: {kind} done", flush=True)
    finally:
        for proc in (worker, asgi):
            if proc is not None:
                proc.stop()
        stack.teardown()
    results = {
        "machine": machine(),
        "args": vars(args),
        "relay": relay,
        "wall_s": time.time() - started,
        "startup": {kind: summarize(kind_blocks) for kind, kind_blocks in blocks.items()},
        "blocks": blocks,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "tools.json").write_text(json.dumps(results, indent=1))
    report = render(results)
    (out / "tools.md").write_text(report)
    print(report)
    if any(
        r["lost"] or r["duplicated"] or r["reordered"] or r["seq_gaps"] or not r["joined_equals_result"] for r in relay
    ):
        sys.exit("relay check FAILED: see the table")


if __name__ == "__main__":
    main()
