"""From the runs of one benchmark to the tables of ``docs/benchmarks.md``.

Figures are medians over the repeats; lost, reordered, mismatched and failed
counts are sums (a single loss anywhere must show). Ratios are against the
references measured in the same run: the raw relay (``raw-relay``), the raw
daphne relay (``raw-daphne``) and the bare SDK (``sdk``). ``_targets`` checks
issue 19's targets against the production variant (``service``)::

    markdown = render(json.loads(Path("test-artifacts/bench/results.json").read_text()))
"""

from __future__ import annotations

import math
import os
import platform
import subprocess

from .cases import Case, keep_up, median_of

RAW = "raw-relay"
RAW_DAPHNE = "raw-daphne"
SDK = "sdk"
SDK_RAW = "sdk-raw"
DEFAULT = "service"
SCALING = ("service", "service-2w", "service-2d2w")
SUMMED = ("lost", "reordered", "text_mismatches", "errors")
CORES_AT_STAKE = ("asgi", "worker", "redis", "fake_api", "clients", "relay", "producer", "sdk")
STREAMS_PLANNED = 10_000
STREAMS_PER_WORKER = 1000  # CELERY_WORKER_CONCURRENCY's default


def machine() -> dict:
    def first_line(command: list[str], pick: str = "") -> str:
        try:
            out = subprocess.run(command, capture_output=True, text=True, timeout=10).stdout
        except OSError:
            return "?"
        lines = [line for line in out.splitlines() if pick in line]
        if not lines:
            return "?"
        return lines[0].split(":", 1)[-1].strip() if pick.endswith("name") else lines[0].strip()

    return {
        "nproc": os.cpu_count(),
        "cpu": first_line(["lscpu"], "Model name"),
        "ram_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "loadavg_at_end": os.getloadavg(),
        "kernel": platform.release(),
        "redis": first_line(["redis-server", "--version"], "v=").split(" sha")[0],
        "python": platform.python_version(),
    }


def aggregate(runs: list[dict], cases: dict[str, Case]) -> dict[tuple[str, str], dict]:
    """(variant, case) -> median figures over repeats, with summed counts."""
    grouped: dict[tuple[str, str], list[dict]] = {}
    for run in runs:
        for case, figures in run["cases"].items():
            if case.startswith("_"):
                continue
            figures = {
                **figures,
                "keep_up": keep_up(cases[case], figures.get("tokens_per_s"), figures["tokens_expected"]),
            }
            grouped.setdefault((run["variant"], case), []).append(figures)
    table = {}
    for key, figure_runs in grouped.items():
        keys = {k for f in figure_runs for k, v in f.items() if isinstance(v, (int, float))}
        merged = {k: median_of(figure_runs, k) for k in keys}
        for k in SUMMED:
            merged[k] = sum(f.get(k) or 0 for f in figure_runs)
        merged["repeats"] = len(figure_runs)
        merged["error_sample"] = next((f["error_sample"] for f in figure_runs if f.get("error_sample")), [])
        table[key] = merged
    return table


def idle_memory(runs: list[dict]) -> dict[str, dict]:
    """Variant -> RSS of each worker and ASGI process after start-up and warm-up (the first repeat's)."""
    out: dict[str, dict] = {}
    for run in runs:
        if "_idle" in run["cases"]:
            out.setdefault(run["variant"], run["cases"]["_idle"])
    return out


def _n(value, fmt: str = "{:.1f}") -> str:
    return "–" if value is None else fmt.format(value)


def _ratio(value, reference) -> str:
    if value is None or not reference:
        return ""
    return f" ({value / reference:.2f}×)"


def _us(row: dict, name: str, per: str = "token") -> float | None:
    """µs of CPU of process ``name`` per delivered token (or per relayed message)."""
    seconds = row.get(f"cpu_{name}_s")
    count = row.get("tokens") if per == "token" else row.get("messages")
    if seconds is None or not count:
        return None
    return seconds / count * 1e6


def render(results: dict) -> str:
    table = aggregate(results["runs"], {c["name"]: Case(**c) for c in results["cases"]})
    cases = [c["name"] for c in results["cases"]]
    variants = list(dict.fromkeys(r["variant"] for r in results["runs"]))
    lines = [
        _machine_line(results),
        "",
        "**Every case** (ratios × are to the raw relay, `bench/relay.py`; "
        "CPU in µs per delivered token; *ref* is the relay + producer, or the SDK process):",
        "",
        "| case | variant | tokens/s (× raw) | keep-up | latency p50 ms (× raw) | p99 ms (× raw) | msgs/s "
        "| tokens/msg | accepted p50/p99 ms | first delta p50/p99 ms | exec/s | lost/reordered "
        "| CPU µs/token: daphne / worker / ref / Redis / PostgreSQL / fake API / clients |",
        "|" + "---|" * 14,
    ]
    for case in cases:
        raw = table.get((RAW, case), {})
        for variant in variants:
            row = table.get((variant, case))
            if row is None:
                continue
            ref = sum(v for v in (_us(row, "relay"), _us(row, "producer"), _us(row, "sdk")) if v is not None) or None
            lines.append(
                f"| {case} | {variant} | {_n(row.get('tokens_per_s'), '{:.0f}')}"
                f"{_ratio(row.get('tokens_per_s'), raw.get('tokens_per_s'))} "
                f"| {_n(row.get('keep_up'), '{:.3f}')} "
                f"| {_n(row.get('lat_p50_ms'))}{_ratio(row.get('lat_p50_ms'), raw.get('lat_p50_ms'))} "
                f"| {_n(row.get('lat_p99_ms'))}{_ratio(row.get('lat_p99_ms'), raw.get('lat_p99_ms'))} "
                f"| {_n(row.get('msgs_per_s'), '{:.0f}')} "
                f"| {_n(row['tokens'] / row['messages'] if row.get('messages') else None)} "
                f"| {_n(row.get('accepted_p50_ms'))} / {_n(row.get('accepted_p99_ms'))} "
                f"| {_n(row.get('first_delta_p50_ms'))} / {_n(row.get('first_delta_p99_ms'))} "
                f"| {_n(row.get('executions_per_s'))} | {row['lost']} / {row['reordered']} "
                f"| {_n(_us(row, 'asgi'), '{:.0f}')} / {_n(_us(row, 'worker'), '{:.0f}')} / {_n(ref, '{:.0f}')} / "
                f"{_n(_us(row, 'redis'), '{:.0f}')} / {_n(_us(row, 'postgres'), '{:.0f}')} / "
                f"{_n(_us(row, 'fake_api'), '{:.0f}')} / {_n(_us(row, 'clients'), '{:.0f}')} |"
            )
    lines += [
        "",
        *_problems(table),
        *_ratios(table, cases),
        *_breakdown(table),
        *_scaling(table, cases),
        *_memory(results, table),
        *_deployment(table, results),
        *_queries(results),
        "",
        *_targets(table, results),
    ]
    return "\n".join(lines) + "\n"


def _machine_line(results: dict) -> str:
    m = results["machine"]
    return (
        f"Machine: {m['nproc']} cores ({m['cpu']}), {m['ram_gib']} GiB RAM, Python {m['python']}, "
        f"{m['redis']}; load average at the end {tuple(round(x, 1) for x in m['loadavg_at_end'])}; "
        f"{max(r['repeat'] for r in results['runs']) + 1} repeat(s), wall {results['wall_s'] / 60:.1f} min."
    )


def _problems(table: dict) -> list[str]:
    lines = []
    for (variant, case), row in sorted(table.items()):
        if row["errors"] or row["text_mismatches"]:
            lines.append(
                f"- {variant} / {case}: {row['errors']} errors, {row['text_mismatches']} text mismatches; "
                f"e.g. {row['error_sample'][:2]}"
            )
    return (["Errors seen:", *lines, ""]) if lines else ["No errors and no text mismatches in any case.", ""]


def _ratios(table: dict, cases: list[str]) -> list[str]:
    """Worker CPU per token against the bare SDK; daphne CPU per message against the raw daphne relay."""
    lines = [
        "**Against the references** (same run, same stream shapes): worker CPU per streamed token ÷ the bare "
        "SDK's (typed events; and the SDK's raw events), daphne CPU per relayed WebSocket message ÷ the raw "
        "daphne relay's:",
        "",
        "| case | worker µs/token | SDK µs/token | worker ÷ SDK | SDK raw-events µs/token | worker ÷ SDK raw "
        "| daphne µs/msg | raw daphne µs/msg | daphne ÷ raw daphne | raw relay µs/msg |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for case in cases:
        row, sdk, sdk_raw = table.get((DEFAULT, case)), table.get((SDK, case), {}), table.get((SDK_RAW, case), {})
        rawd, raw = table.get((RAW_DAPHNE, case), {}), table.get((RAW, case), {})
        if row is None or not (sdk or rawd):
            continue
        worker, s, sr = _us(row, "worker"), _us(sdk, "sdk"), _us(sdk_raw, "sdk")
        daphne, rd, rr = _us(row, "asgi", "msg"), _us(rawd, "relay", "msg"), _us(raw, "relay", "msg")
        lines.append(
            f"| {case} | {_n(worker, '{:.0f}')} | {_n(s, '{:.0f}')} | {_div(worker, s)} | {_n(sr, '{:.0f}')} "
            f"| {_div(worker, sr)} | {_n(daphne, '{:.0f}')} | {_n(rd, '{:.0f}')} | {_div(daphne, rd)} "
            f"| {_n(rr, '{:.0f}')} |"
        )
    return [*lines, ""]


def _div(a, b) -> str:
    return "–" if a is None or not b else f"{a / b:.2f}×"


def _breakdown(table: dict) -> list[str]:
    """1,000 × 10 tok/s: where the two cores went, and the machine's limit from per-event costs."""
    row = table.get((DEFAULT, "1000x10"))
    if not row or not row.get("cpu_window_s"):
        return []
    window = row["cpu_window_s"]
    lines = [
        f"**1,000 × 10 tok/s, CPU breakdown** (service, CPU over the case's {window:.1f} s window; "
        f"µs per delivered token; cores = CPU s ÷ window):",
        "",
        "| process | CPU s | cores | µs/token |",
        "|---|---|---|---|",
    ]
    total = 0.0
    for name, label in (
        ("worker", "worker (1 process)"),
        ("asgi", "daphne"),
        ("redis", "Redis"),
        ("postgres", "PostgreSQL"),
        ("fake_api", "fake Messages API"),
        ("clients", "clients (2 processes)"),
    ):
        seconds = row.get(f"cpu_{name}_s")
        if seconds is None:
            continue
        total += seconds
        lines.append(f"| {label} | {seconds:.1f} | {seconds / window:.2f} | {_n(_us(row, name), '{:.0f}')} |")
    lines.append(
        f"| **total** | {total:.1f} | {total / window:.2f} | "
        f"{_n(total / row['tokens'] * 1e6 if row.get('tokens') else None, '{:.0f}')} |"
    )
    cores = os.cpu_count() or 2
    per_token_service = total / row["tokens"] if row.get("tokens") else None
    sdk, rawd = table.get((SDK, "1000x10"), {}), table.get((RAW_DAPHNE, "1000x10"), {})
    floor = None
    if sdk.get("tokens") and rawd.get("messages"):
        # The least these tokens could cost, from the references' per-event costs in this run: the bare SDK
        # reading them (and the fake API writing them), and the raw daphne relay with its Redis and clients
        # sending one WebSocket message per token.
        floor = (
            sum(
                v or 0
                for v in (
                    _us(sdk, "sdk"),
                    _us(sdk, "fake_api"),
                    _us(rawd, "relay", "msg"),
                    _us(rawd, "redis", "msg"),
                    _us(rawd, "clients", "msg"),
                )
            )
            / 1e6
        )
    lines += [
        "",
        f"Offered: 1,000 streams × 10 tok/s = 10,000 tok/s once all have started; delivered "
        f"{_n(row.get('tokens_per_s'), '{:,.0f}')} tok/s, keep-up {_n(row.get('keep_up'), '{:.3f}')}. "
        f"At the service's measured cost ({per_token_service * 1e6:.0f} µs of CPU per token, all processes "
        f"above) {cores} cores carry at most {cores / per_token_service:,.0f} tok/s"
        + (
            f"; at the references' per-event costs (bare SDK + fake API + raw daphne relay + its Redis and "
            f"clients, one message per token: {floor * 1e6:.0f} µs per token) the machine's limit is "
            f"{cores / floor:,.0f} tok/s."
            if floor
            else "."
        ),
        "",
    ]
    return lines


def _scaling(table: dict, cases: list[str]) -> list[str]:
    rows = [(v, c) for v in SCALING for c in cases if (v, c) in table and c in ("1000x10", "max", "execs")]
    if not any(v != DEFAULT for v, _ in rows):
        return []
    lines = [
        "**Scaling** (1 → 2 worker processes, then 2 daphne processes too; the same 2 cores):",
        "",
        "| variant | 1000x10 keep-up | 1000x10 tok/s | 1000x10 first delta p50 ms | max tok/s | execs exec/s "
        "| execs CPU ms/exec daphne + worker |",
        "|---|---|---|---|---|---|---|",
    ]
    for variant in SCALING:
        a, m, e = (table.get((variant, c), {}) for c in ("1000x10", "max", "execs"))
        if not (a or m or e):
            continue
        lines.append(
            f"| {variant} | {_n(a.get('keep_up'), '{:.3f}')} | {_n(a.get('tokens_per_s'), '{:.0f}')} "
            f"| {_n(a.get('first_delta_p50_ms'), '{:.0f}')} "
            f"| {_n(m.get('tokens_per_s'), '{:.0f}')} | {_n(e.get('executions_per_s'))} "
            f"| {_n(_start_ms(e))} |"
        )
    return [*lines, ""]


def _start_ms(row: dict, *names: str) -> float | None:
    names = names or ("asgi", "worker")
    if not row.get("completed") or any(row.get(f"cpu_{n}_s") is None for n in names):
        return None
    return sum(row[f"cpu_{n}_s"] for n in names) / row["completed"] * 1000


def _per_stream_kib(idle: dict | None, held: dict) -> float | None:
    """Worker RSS growth per execution held at once: (peak during the case − idle after warm-up) ÷ peak running."""
    if not idle or not held.get("rss_peak_mb") or not held.get("peak_running"):
        return None
    return (held["rss_peak_mb"] - idle["worker_rss_mb"][0]) / held["peak_running"] * 1024


def _memory(results: dict, table: dict) -> list[str]:
    lines = []
    idle = idle_memory(results["runs"])
    held = table.get((DEFAULT, "1000x20@1"), {})
    if idle.get(DEFAULT):
        worker = idle[DEFAULT]["worker_rss_mb"][0]
        lines += [
            "**Memory** (RSS):",
            "",
            f"- an idle worker process (started, 10 executions run): {worker:.0f} MiB; "
            f"daphne: {idle[DEFAULT]['asgi_rss_mb'][0]:.0f} MiB.",
        ]
        if held.get("rss_peak_mb"):
            per = _per_stream_kib(idle[DEFAULT], held)
            lines.append(
                f"- the worker during 1000x20@1 ({held['executions']:,.0f} streams; at most "
                f"{_n(held.get('peak_running'), '{:,.0f}')} running at once, read every 0.25 s): "
                f"{held['rss_before_mb']:.0f} MiB at the start → peak {held['rss_peak_mb']:.0f} MiB; "
                f"{_n(per, '{:.0f}')} KiB per running execution over the idle worker."
            )
        lines.append("")
    lines += [
        "| server | idle authenticated connections | RSS before → after MiB | KiB per idle connection |",
        "|---|---|---|---|",
    ]
    for server, m in results["memory"].items():
        lines.append(
            f"| {server} | {m['idle_connections']} | {m['rss_before_mb']:.0f} → {m['rss_after_mb']:.0f} "
            f"| {m['kib_per_idle_connection']:.1f} |"
        )
    return [*lines, ""]


def _deployment(table: dict, results: dict) -> list[str]:
    """Per 10,000 concurrent streams: processes, cores and memory, from this run's per-token costs."""
    idle = idle_memory(results["runs"]).get(DEFAULT)
    held = table.get((DEFAULT, "1000x20@1"), {})
    lines = [
        f"**Per {STREAMS_PLANNED:,} concurrent streams** (arithmetic on this run's figures: CPU per delivered "
        "token in the case of that rate, starts included, × 10,000 × the rate; a worker process is one core at "
        "most, and holds at most 1,000 streams; memory = processes × idle RSS + streams × KiB per running "
        "execution):",
        "",
        "| rate per stream | from case | worker processes | worker cores | daphne cores "
        "| Redis cores | PostgreSQL cores | worker memory GiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    per_stream = _per_stream_kib(idle, held)
    for rate, case in ((1, "1000x20@1"), (10, "1000x10"), (50, "100x50")):
        row = table.get((DEFAULT, case))
        if not row or not row.get("tokens"):
            continue
        tokens_per_s = STREAMS_PLANNED * rate
        cores = {
            n: (row.get(f"cpu_{n}_s") or 0) / row["tokens"] * tokens_per_s
            for n in ("worker", "asgi", "redis", "postgres")
        }
        processes = max(math.ceil(STREAMS_PLANNED / STREAMS_PER_WORKER), math.ceil(cores["worker"]))
        memory = None
        if idle and per_stream is not None:
            memory = (processes * idle["worker_rss_mb"][0] + STREAMS_PLANNED * per_stream / 1024) / 1024
        lines.append(
            f"| {rate} tok/s ({tokens_per_s:,} tok/s) | {case} | {processes} "
            f"| {cores['worker']:.1f} | {cores['asgi']:.1f} | {cores['redis']:.2f} | {cores['postgres']:.2f} "
            f"| {_n(memory)} |"
        )
    return [*lines, ""]


def _queries(results: dict) -> list[str]:
    q = results["db_queries"]
    if "error" in q:
        return [f"DB queries: failed: {q['error']}"]
    lines = ["| tokens per execution | queries | by statement | deltas stored |", "|---|---|---|---|"]
    for tokens, row in q.items():
        lines.append(f"| {int(tokens):,} | {row['queries']} | {row['by_verb']} | {row['deltas']} |")
    return lines


def _targets(table: dict, results: dict) -> list[str]:
    d = lambda case: table.get((DEFAULT, case), {})  # noqa: E731
    raw = lambda case: table.get((RAW, case), {})  # noqa: E731
    ratio = lambda a, b: None if a is None or not b else a / b  # noqa: E731
    checks = [
        ("1,000 × 20 tok @ 1 tok/s, one worker: keep-up ≥ 0.95", d("1000x20@1").get("keep_up"), 0.95, ">="),
        ("1,000 × 20 tok @ 1 tok/s: lost + reordered = 0", _sum(d("1000x20@1"), "lost", "reordered"), 0, "=="),
        ("1,000 × 20 tok @ 1 tok/s: first delta p99 ≤ 2,000 ms", d("1000x20@1").get("first_delta_p99_ms"), 2000, "<="),
    ]
    for case in ("1000x10", "1000x20@1", "100x50", "max"):
        checks.append(
            (
                f"{case}: worker CPU per token ÷ bare SDK's ≤ 1.3",
                ratio(_us(d(case), "worker"), _us(table.get((SDK, case), {}), "sdk")),
                1.3,
                "<=",
            )
        )
    for case in ("1000x10", "1000x20@1", "100x50", "max"):
        checks.append(
            (
                f"{case}: daphne CPU per message ÷ raw daphne relay's ≤ 1.2",
                ratio(_us(d(case), "asgi", "msg"), _us(table.get((RAW_DAPHNE, case), {}), "relay", "msg")),
                1.2,
                "<=",
            )
        )
    checks += [
        (
            "start cost (execs: 20 clients × 10 executions): daphne + worker CPU ms per execution ≤ 8",
            _start_ms(d("execs")),
            8,
            "<=",
        ),
        (
            "start cost (startup: one after another): daphne + worker CPU ms per execution ≤ 8",
            _start_ms(d("startup")),
            8,
            "<=",
        ),
        (
            "(no target) start cost (execs) with PostgreSQL and Redis too, CPU ms per execution",
            _start_ms(d("execs"), "asgi", "worker", "postgres", "redis"),
            None,
            "info",
        ),
        (
            "1 stream × 50 tok/s: latency p50 ≤ 1.5 × raw relay's",
            ratio(d("1x50").get("lat_p50_ms"), raw("1x50").get("lat_p50_ms")),
            1.5,
            "<=",
        ),
        (
            "100 × 50 tok/s: latency p99 ≤ 2 × raw relay's",
            ratio(d("100x50").get("lat_p99_ms"), raw("100x50").get("lat_p99_ms")),
            2,
            "<=",
        ),
        ("1,000 × 10 tok/s: lost + reordered = 0", _sum(d("1000x10"), "lost", "reordered"), 0, "=="),
    ]
    q = results["db_queries"]
    if "error" not in q:
        sizes = list(q.values())
        checks.append(
            (
                "DB queries per execution the same at 10 and 10,000 tokens",
                sizes[-1]["queries"],
                sizes[0]["queries"],
                "==",
            )
        )
    lines = [f"Targets (issue 19; `{DEFAULT}`: daphne + one `celery -A config worker`):", ""]
    for label, value, goal, op in checks:
        if op == "info":
            lines.append(f"- {label}: {_n(value)}")
            continue
        if value is None or goal is None:
            lines.append(f"- not measured: {label}")
            continue
        ok = {"<=": value <= goal, ">=": value >= goal, "==": value == goal}[op]
        lines.append(f"- {'MET' if ok else 'MISSED'}: {label} — measured {value:.3g}, goal {op} {goal:.3g}")
    keep = d("1000x10").get("keep_up")
    lines.append(f"- (no target) 1,000 × 10 tok/s keep-up: {_n(keep, '{:.3f}')}")
    return lines


def _sum(row: dict, *keys: str):
    return None if not row else sum(row.get(k) or 0 for k in keys)
