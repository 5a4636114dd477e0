"""The engine's benchmark (issue 19): the service next to the bare SDK and the raw relays, in one run.

    .venv/bin/python bench/run.py            # full run (~10 min on 2 cores)
    .venv/bin/python bench/run.py --quick    # small counts (development, ~5 min)

Starts everything itself (PostgreSQL database ``mcp_bench``, Redis database
14 under a namespace of its own, the fake Messages API, daphne, Celery workers
started by the production command, the references: ``bench/relay.py``,
``bench/daphne_relay.py`` under daphne, ``bench/sdk_consumer.py``), runs every
case on every variant, interleaved when repeated, and writes ``test-artifacts/bench/report.md`` (the
table for ``docs/benchmarks.md``) and ``results.json`` (every run). Not part
of the test suite: pytest only collects ``tests/``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import platform
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil  # noqa: E402

from bench.cases import Case, CpuSampler, measure_idle_memory, run_case, run_sdk_case  # noqa: E402
from bench.report import machine, render  # noqa: E402
from bench.stack import LOG_DIR, ROOT, BenchStack, Proc, Variant, postgres_pid, redis_server_pid, spawn, wait_until  # noqa: E402

logger = logging.getLogger("bench")

FULL_CASES = [
    Case("1x50", streams=1, tokens=200, rate=50, sdk=True),
    Case("startup", streams=1, tokens=10, rate=0, executions=20, relay=False),
    Case("100x50", streams=100, tokens=200, rate=50, ramp_s=1, sdk=True),
    # First of the 1,000-stream cases, so the worker's RSS before it is still that of a lightly used worker.
    Case("1000x20@1", streams=1000, tokens=20, rate=1, ramp_s=5, sdk=True),
    Case("1000x10", streams=1000, tokens=100, rate=10, ramp_s=5, sdk=True, scale=True),
    Case("max", streams=50, tokens=1000, rate=0, ramp_s=0.2, sdk=True, scale=True),
    Case("execs", streams=20, tokens=10, rate=0, executions=10, relay=False, scale=True),
]
QUICK_CASES = [
    Case("1x50", streams=1, tokens=100, rate=50, sdk=True),
    Case("startup", streams=1, tokens=10, rate=0, executions=5, relay=False),
    Case("100x50", streams=20, tokens=100, rate=50, ramp_s=0.5, sdk=True),
    Case("1000x20@1", streams=100, tokens=5, rate=1, ramp_s=1, sdk=True),
    Case("1000x10", streams=100, tokens=50, rate=10, ramp_s=1, sdk=True, scale=True),
    Case("max", streams=10, tokens=500, rate=0, sdk=True, scale=True),
    Case("execs", streams=10, tokens=10, rate=0, executions=5, relay=False, scale=True),
]
VARIANTS = {
    # The service as production runs it: daphne + the pub/sub layer, one `celery -A config worker`.
    "service": Variant("service"),
    # Scaling: the same with 2 worker processes, and with 2 daphne processes too (clients split by port).
    "service-2w": Variant("service-2w", workers=2),
    "service-2d2w": Variant("service-2d2w", workers=2, servers=2),
    # Other configurations, not in the default set.
    "uvicorn": Variant("uvicorn", server="uvicorn"),
    "daphne-core": Variant("daphne-core", layer="core"),
    "daphne-fixed": Variant("daphne-fixed", extra_env=(("MCP_COALESCE_DELTAS_PER_S", "0"),)),
}
# References, measured in the same run: no project code on their path.
RAW = "raw-relay"  # bench/relay.py: Redis pub/sub → `websockets`
RAW_DAPHNE = "raw-daphne"  # bench/daphne_relay.py: Redis pub/sub → a bare ASGI app under daphne
SDK = "sdk"  # bench/sdk_consumer.py: the bare AsyncAnthropic SDK, typed events
SDK_RAW = "sdk-raw"  # the same, reading the SDK's raw server-sent events
REFERENCES = (RAW, RAW_DAPHNE, SDK, SDK_RAW)
DEFAULT_VARIANTS = "raw-relay,raw-daphne,sdk,sdk-raw,service,service-2w,service-2d2w"
# Variants that run only the scaling cases (Case.scale).
SCALE_ONLY = {"service-2w", "service-2d2w"}
WARM_UP = Case("warm-up", streams=10, tokens=20, rate=0)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="The engine against the bare SDK and the raw relays (docs/benchmarks.md)."
    )
    parser.add_argument("--quick", action="store_true", help="small counts, one repeat")
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="every variant runs every case this many times, interleaved (default 1: ~10 min)",
    )
    parser.add_argument(
        "--variants", default=DEFAULT_VARIANTS, help=f"comma list of {', '.join(REFERENCES)}, {', '.join(VARIANTS)}"
    )
    parser.add_argument("--cases", default="", help="comma list of case names (default: all)")
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--idle-connections", type=int, help="default 1000 (full) or 200 (quick)")
    parser.add_argument("--coalesce-ms", type=int, help="MCP_COALESCE_MS for every variant")
    parser.add_argument("--coalesce-bytes", type=int, help="MCP_COALESCE_BYTES for every variant")
    parser.add_argument("--deltas-per-s", type=int, help="MCP_COALESCE_DELTAS_PER_S for every variant")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the server and workers with py-spy during each case (pip install py-spy)",
    )
    parser.add_argument("--py-spy", default="", help="the py-spy binary (default: on PATH or beside python)")
    parser.add_argument("--out", default=str(LOG_DIR))
    return parser.parse_args()


def start_relay(stack: BenchStack, sampler: CpuSampler) -> tuple[Proc, list[str]]:
    from bench.stack import free_port

    port = free_port()
    proc = spawn(
        "raw-relay",
        [
            sys.executable,
            "-m",
            "bench.relay",
            "serve",
            "--port",
            str(port),
            "--redis",
            stack.redis_url,
            "--prefix",
            f"{stack.namespace}:relay:",
        ],
        stack.base_env(),
    )
    wait_until(lambda: "listening" in proc.log() or not proc.alive(), timeout=30, what="raw relay")
    sampler.watch("relay", proc.pid)
    return proc, [f"ws://127.0.0.1:{port}"]


def start_daphne_relay(stack: BenchStack, sampler: CpuSampler) -> tuple[Proc, list[str]]:
    """daphne serving bench/daphne_relay.py (no Django): what daphne alone costs per relayed message."""
    import socket

    from bench.stack import free_port

    def listening() -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    port = free_port()
    env = {**stack.base_env(), "BENCH_RELAY_REDIS": stack.redis_url, "BENCH_RELAY_PREFIX": f"{stack.namespace}:relay:"}
    proc = spawn(
        "raw-daphne",
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "-v",
            "0",
            "bench.daphne_relay:application",
        ],
        env,
    )
    wait_until(lambda: listening() or not proc.alive(), timeout=30, what="raw daphne relay")
    if not proc.alive():
        raise RuntimeError(f"raw daphne relay died:\n{proc.log()[-3000:]}")
    sampler.watch("relay", proc.pid)
    return proc, [f"ws://127.0.0.1:{port}"]


def run_variant(name: str, cases: list[Case], args, stack: BenchStack, sampler: CpuSampler) -> dict[str, dict]:
    """Start one variant (or a reference), run its cases, stop it; figures by case name."""
    results: dict[str, dict] = {}
    if name in (SDK, SDK_RAW):
        for case in (c for c in cases if c.sdk):
            results[case.name] = run_sdk_case(case, stack=stack, sampler=sampler, raw=name == SDK_RAW)
            log_case(name, case, results[case.name])
        return results
    if name in (RAW, RAW_DAPHNE):
        relay, urls = (start_relay if name == RAW else start_daphne_relay)(stack, sampler)
        try:
            for case in (c for c in cases if c.relay):
                results[case.name] = run_case(
                    case,
                    stack=stack,
                    server=None,
                    relay_urls=urls,
                    sampler=sampler,
                    client_processes=args.client_processes,
                )
                log_case(name, case, results[case.name])
        finally:
            relay.stop()
            sampler.forget("relay")
        return results
    variant = VARIANTS[name]
    if args.coalesce_ms is not None or args.coalesce_bytes is not None:
        variant = Variant(
            **{**variant.__dict__, "coalesce_ms": args.coalesce_ms, "coalesce_bytes": args.coalesce_bytes}
        )
    if args.deltas_per_s is not None:
        variant = Variant(
            **{
                **variant.__dict__,
                "extra_env": (*variant.extra_env, ("MCP_COALESCE_DELTAS_PER_S", str(args.deltas_per_s))),
            }
        )
    server = stack.start_variant(variant)
    sampler.watch("asgi", *(a.pid for a in server.asgis))
    sampler.watch("worker", *(w.pid for w in server.workers))
    worker_pids = tuple(w.pid for w in server.workers)
    try:
        # First use costs (imports, connection pools, query plans) are not what a case measures.
        run_case(WARM_UP, stack=stack, server=server, relay_urls=[], sampler=sampler, client_processes=1)
        wait_until(lambda: stack.active_executions() == 0, timeout=30, what="the warm-up's executions to end")
        results["_idle"] = {
            "worker_rss_mb": [psutil.Process(pid).memory_info().rss / 2**20 for pid in worker_pids],
            "asgi_rss_mb": [psutil.Process(a.pid).memory_info().rss / 2**20 for a in server.asgis],
        }
        for case in cases:
            if name in SCALE_ONLY and not case.scale:
                continue
            with profiled(
                args, f"{name}-{case.name}", {"asgi": [a.pid for a in server.asgis], "worker": list(worker_pids)}
            ):
                results[case.name] = run_case(
                    case,
                    stack=stack,
                    server=server,
                    relay_urls=[],
                    sampler=sampler,
                    client_processes=args.client_processes,
                    rss_pids=worker_pids,
                )
            log_case(name, case, results[case.name])
            for proc in [*server.asgis, *server.workers]:
                if not proc.alive():
                    raise RuntimeError(f"{proc.name} died:\n{proc.log()[-3000:]}")
    finally:
        stack.stop_variant(server)
        sampler.forget("asgi")
        sampler.forget("worker")
    return results


@contextlib.contextmanager
def profiled(args, label: str, pids: dict[str, list[int]]):
    """With ``--profile``: py-spy samples each process for the block's duration
    (raw folded stacks, ``profile-<variant>-<case>-<process>.txt`` in ``--out``)."""
    if not args.profile:
        yield
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    py_spy = args.py_spy or shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    # --gil: only the thread holding the GIL is sampled, so the stacks show where
    # Python spends CPU, not where the database threads wait.
    samplers = [
        subprocess.Popen(
            [
                py_spy,
                "record",
                "--pid",
                str(pid),
                "--gil",
                "--rate",
                "100",
                "--format",
                "raw",
                "-o",
                str(out / f"profile-{label}-{role}{i}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for role, role_pids in pids.items()
        for i, pid in enumerate(role_pids)
    ]
    try:
        yield
    finally:
        for sampler in samplers:
            sampler.send_signal(signal.SIGINT)
        for sampler in samplers:
            sampler.wait(30)


def log_case(variant: str, case: Case, figures: dict) -> None:
    def f(key: str, fmt: str = "{:.1f}") -> str:
        value = figures.get(key)
        return "-" if value is None else fmt.format(value)

    print(
        f"  {variant:15} {case.name:8} tok/s {f('tokens_per_s', '{:.0f}'):>6}  keep-up {f('keep_up', '{:.3f}')}  "
        f"p50 {f('lat_p50_ms')} p99 {f('lat_p99_ms')} ms  "
        f"accepted {f('accepted_p50_ms')} first {f('first_delta_p50_ms')}"
        f"  tok/delta {f('tokens_per_delta')}  lost {figures['lost']} reord {figures['reordered']}"
        f"  errors {figures['errors']} {figures['error_sample'][:1]}",
        flush=True,
    )


def db_queries(stack: BenchStack) -> dict:
    """Queries per execution at 10 and 10,000 tokens (bench/dbqueries.py, in its own process)."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.dbqueries"],
        cwd=ROOT,
        env=stack.base_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if out.returncode:
        return {"error": out.stderr[-2000:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def interrupt_once(signum, frame) -> None:
    """Stop the run at the first SIGINT/SIGTERM; ignore later ones while the ``finally`` blocks clean up."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def main() -> None:
    args = parse_args()
    # A plain SIGTERM would skip the ``finally`` blocks and leave the servers running;
    # a second Ctrl-C (or the SIGINT that ``timeout`` forwards) must not cut the clean-up short.
    signal.signal(signal.SIGTERM, interrupt_once)
    signal.signal(signal.SIGINT, interrupt_once)
    cases = QUICK_CASES if args.quick else FULL_CASES
    if args.cases:
        cases = [c for c in cases if c.name in args.cases.split(",")]
    repeats = args.repeats
    variants = [v for v in args.variants.split(",") if v]
    started = time.time()
    stack = BenchStack(redis_db=14).setup(users=max(c.streams for c in cases) + 20)
    sampler = CpuSampler()
    sampler.watch("redis", redis_server_pid())
    sampler.watch("postgres", postgres_pid())
    sampler.watch("fake_api", stack.fake.pid)
    runs: list[dict] = []
    memory: dict[str, dict] = {}
    try:
        for rep in range(repeats):
            # Interleaved: every variant once per repeat, so a noisy minute hits all of them.
            for name in variants if rep % 2 == 0 else list(reversed(variants)):
                print(f"repeat {rep + 1}/{repeats}: {name}", flush=True)
                runs.append({"repeat": rep, "variant": name, "cases": run_variant(name, cases, args, stack, sampler)})
        for name in sorted({VARIANTS[v].server for v in variants if v in VARIANTS}):
            server = stack.start_variant(Variant(f"{name}-idle", server=name))
            try:
                memory[name] = measure_idle_memory(
                    server,
                    stack,
                    connections=args.idle_connections or (200 if args.quick else 1000),
                    client_processes=args.client_processes,
                )
                print(f"  idle memory {name}: {memory[name]}", flush=True)
            finally:
                stack.stop_variant(server)
        queries = db_queries(stack)
        print(f"  db queries: {queries}", flush=True)
    finally:
        stack.teardown()
    results = {
        "machine": machine(),
        "args": vars(args),
        "cases": [c.__dict__ for c in cases],
        "runs": runs,
        "memory": memory,
        "db_queries": queries,
        "wall_s": time.time() - started,
        "python": platform.python_version(),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    report = render(results)
    (out / "report.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
