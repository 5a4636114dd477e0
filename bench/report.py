"""From the runs of one benchmark to the tables of ``docs/benchmarks.md``.

Figures are medians over the repeats; lost, reordered, mismatched and failed
counts are sums (a single loss anywhere must show). Ratios are against the
reference relay measured in the same run. ``targets`` checks the issue's
targets against the default variant (daphne + pub/sub layer)::

    markdown = render(json.loads(Path("test-artifacts/bench/results.json").read_text()))
"""
from __future__ import annotations

import os
import platform
import subprocess

from .cases import Case, keep_up, median_of

RAW = "raw-relay"
DEFAULT = "daphne-pubsub"
DEFAULT_COALESCE_MS = 15
SUMMED = ("lost", "reordered", "text_mismatches", "errors")


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

    return {"nproc": os.cpu_count(), "cpu": first_line(["lscpu"], "Model name"),
            "ram_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30, 1),
            "loadavg_at_end": os.getloadavg(), "kernel": platform.release(),
            "redis": first_line(["redis-server", "--version"], "v=").split(" sha")[0], "python": platform.python_version()}


def aggregate(runs: list[dict], cases: dict[str, Case]) -> dict[tuple[str, str], dict]:
    """(variant, case) -> median figures over repeats, with summed counts."""
    grouped: dict[tuple[str, str], list[dict]] = {}
    for run in runs:
        for case, figures in run["cases"].items():
            # Recomputed against the schedule (runs stored before keep_up meant that).
            figures = {**figures, "keep_up": keep_up(cases[case], figures.get("tokens_per_s"),
                                                     figures["tokens_expected"])}
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


def _n(value, fmt: str = "{:.1f}") -> str:
    return "–" if value is None else fmt.format(value)


def _ratio(value, reference) -> str:
    if value is None or not reference:
        return ""
    return f" ({value / reference:.2f}×)"


def render(results: dict) -> str:
    table = aggregate(results["runs"], {c["name"]: Case(**c) for c in results["cases"]})
    cases = [c["name"] for c in results["cases"]]
    variants = list(dict.fromkeys(r["variant"] for r in results["runs"]))
    lines = [_machine_line(results), "",
             "| case | variant | tokens/s (× raw) | keep-up | latency p50 ms (× raw) | p99 ms (× raw) | deltas/s "
             "| tokens/delta | accepted p50/p99 ms | first delta p50/p99 ms | exec/s | lost/reordered "
             "| CPU s per 1k tokens: server / worker / Redis / relay+producer |",
             "|" + "---|" * 14]
    for case in cases:
        raw = table.get((RAW, case), {})
        for variant in variants:
            row = table.get((variant, case))
            if row is None:
                continue
            cpu_server = row.get("cpu_asgi_per_1k")
            cpu_relay = (row.get("cpu_relay_per_1k") or 0) + (row.get("cpu_producer_per_1k") or 0) or None
            lines.append(
                f"| {case} | {variant} | {_n(row.get('tokens_per_s'), '{:.0f}')}{_ratio(row.get('tokens_per_s'), raw.get('tokens_per_s'))} "
                f"| {_n(row.get('keep_up'), '{:.3f}')} "
                f"| {_n(row.get('lat_p50_ms'))}{_ratio(row.get('lat_p50_ms'), raw.get('lat_p50_ms'))} "
                f"| {_n(row.get('lat_p99_ms'))}{_ratio(row.get('lat_p99_ms'), raw.get('lat_p99_ms'))} "
                f"| {_n(row.get('msgs_per_s'), '{:.0f}')} | {_n(row.get('tokens_per_delta'))} "
                f"| {_n(row.get('accepted_p50_ms'))} / {_n(row.get('accepted_p99_ms'))} "
                f"| {_n(row.get('first_delta_p50_ms'))} / {_n(row.get('first_delta_p99_ms'))} "
                f"| {_n(row.get('executions_per_s'))} | {row['lost']} / {row['reordered']} "
                f"| {_n(cpu_server, '{:.3f}')} / {_n(row.get('cpu_worker_per_1k'), '{:.3f}')} / "
                f"{_n(row.get('cpu_redis_per_1k'), '{:.3f}')} / {_n(cpu_relay, '{:.3f}')} |")
    lines += ["", *_problems(table), *_memory(results), *_queries(results), "", *_targets(table, results)]
    return "\n".join(lines) + "\n"


def _machine_line(results: dict) -> str:
    m = results["machine"]
    return (f"Machine: {m['nproc']} cores ({m['cpu']}), {m['ram_gib']} GiB RAM, Python {m['python']}, "
            f"{m['redis']}; load average at the end {tuple(round(x, 1) for x in m['loadavg_at_end'])}; "
            f"{max(r['repeat'] for r in results['runs']) + 1} repeats, wall {results['wall_s'] / 60:.1f} min.")


def _problems(table: dict) -> list[str]:
    lines = []
    for (variant, case), row in sorted(table.items()):
        if row["errors"] or row["text_mismatches"]:
            lines.append(f"- {variant} / {case}: {row['errors']} errors, {row['text_mismatches']} text mismatches; "
                         f"e.g. {row['error_sample'][:2]}")
    return (["Errors seen:", *lines, ""]) if lines else []


def _memory(results: dict) -> list[str]:
    lines = ["| server | idle authenticated connections | RSS before → after MiB | KiB per idle connection |",
             "|---|---|---|---|"]
    for server, m in results["memory"].items():
        lines.append(f"| {server} | {m['idle_connections']} | {m['rss_before_mb']:.0f} → {m['rss_after_mb']:.0f} "
                     f"| {m['kib_per_idle_connection']:.1f} |")
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
    window = results["args"].get("coalesce_ms") or DEFAULT_COALESCE_MS
    checks = [
        ("100 streams × 50 tok/s: keep-up ≥ 0.99", d("100x50").get("keep_up"), 0.99, ">="),
        ("100 streams × 50 tok/s: lost + reordered = 0", _sum(d("100x50"), "lost", "reordered"), 0, "=="),
        ("100 streams × 50 tok/s: p99 ≤ raw p99 (ms)", d("100x50").get("lat_p99_ms"), raw("100x50").get("lat_p99_ms"), "<="),
        ("max rate: tokens/s ≥ raw", d("max").get("tokens_per_s"), raw("max").get("tokens_per_s"), ">="),
        (f"1 stream: p50 ≤ 2 × raw p50 + {window} ms window", d("1x50").get("lat_p50_ms"),
         None if raw("1x50").get("lat_p50_ms") is None else 2 * raw("1x50")["lat_p50_ms"] + window, "<="),
        ("1 stream: execute → accepted p50 ≤ 10 ms", d("startup").get("accepted_p50_ms"), 10, "<="),
        ("1 stream: execute → first delta p50 ≤ 30 ms", d("startup").get("first_delta_p50_ms"), 30, "<="),
        ("1,000 streams × 10 tok/s: lost + reordered = 0", _sum(d("1000x10"), "lost", "reordered"), 0, "=="),
        ("1,000 streams × 10 tok/s: keep-up ≥ 0.99", d("1000x10").get("keep_up"), 0.99, ">="),
    ]
    q = results["db_queries"]
    if "error" not in q:
        sizes = list(q.values())
        checks.append(("DB queries per execution independent of tokens", sizes[-1]["queries"], sizes[0]["queries"], "=="))
    lines = [f"Targets ({DEFAULT}):", ""]
    for label, value, goal, op in checks:
        if value is None or goal is None:
            lines.append(f"- {label}: not measured")
            continue
        ok = {"<=": value <= goal, ">=": value >= goal, "==": value == goal}[op]
        lines.append(f"- {'MET' if ok else 'MISSED'}: {label} — measured {value:.3g}, goal {op} {goal:.3g}")
    return lines


def _sum(row: dict, *keys: str):
    return None if not row else sum(row.get(k) or 0 for k in keys)
