"""1,000 mixed executions under two workers: the stats equal a count of the rows.

Twenty-five real WebSocket clients, each on its own connection, run forty
executions one after the other on the fault stack (two prefork workers):

* every 10th summarizes a page that answers 404: failed at once;
* every 10th (offset 1) is cancelled as soon as it is accepted;
* every 10th (offset 2) asks for the same report with the cache on: the first
  to finish fills the cache, later ones are answered from it;
* the rest ask for fresh reports, while the fake Messages API, in rotation,
  answers 529 (retried), 400 (failed), errors mid-stream (retried) or drops
  the connection (retried).

Each client checks every execution it ran (seq 1..n, one terminal event, the
streamed text equal to the result's); at the end each row's status must be
what its client saw, and ``ToolUsageStats`` must have grown by exactly the
rows' count per tool and status.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest

from tests.conftest import TERMINAL
from tests.e2e.helpers import recv, send, ws_connect
from tests.reliability.client import execution_problems, statuses
from tests.reliability.infra import not_found_server
from tests.reliability.report import table, write_section
from tests.stack import wait_until

pytestmark = pytest.mark.production

CLIENTS = 25
PER_CLIENT = 40
TOTAL = CLIENTS * PER_CLIENT
SHARED_REPORT = {"data": {"shared": "cached after the first run"}}
# The fake API's answers, in rotation (each request takes the next one).
ROTATION = [
    {"status": 529},
    {},
    {},
    {"status": 400},
    {},
    {},
    {"tokens": 8, "error_after": 3, "error_type": "overloaded_error"},
    {},
    {},
    {"tokens": 8, "drop_after": 3},
    {},
    {},
]
STAT_COLUMNS = (
    "total_executions",
    "successful_executions",
    "failed_executions",
    "cancelled_executions",
    "cached_executions",
)


@dataclass
class Outcome:
    execution_id: str
    tool: str
    status: str
    retried: bool
    events: list[dict]
    problems: list[str] = field(default_factory=list)


def plan(index: int, missing_url: str) -> tuple[str, dict, bool, bool]:
    """(tool, parameters, use_cache, cancel) for execution number ``index``."""
    if index % 10 == 0:
        return "summarize_content", {"url": missing_url}, False, False
    if index % 10 == 1:
        return "generate_report", {"data": {"cancel": index}}, False, True
    if index % 10 == 2:
        return "generate_report", SHARED_REPORT, True, False
    return "generate_report", {"data": {"fresh": index}}, False, False


def run_client(ws_url: str, token: str, first: int, missing_url: str) -> list[Outcome]:
    outcomes = []
    with ws_connect(ws_url, token) as ws:
        for index in range(first, first + PER_CLIENT):
            tool, parameters, use_cache, cancel = plan(index, missing_url)
            send(ws, {"type": "execute", "tool": tool, "parameters": parameters, "use_cache": use_cache})
            accepted = recv(ws, timeout=60)
            assert accepted["type"] == "execution.accepted", accepted
            if cancel:
                send(ws, {"type": "cancel", "execution_id": accepted["execution_id"]})
            events = []
            while not events or events[-1]["type"] not in TERMINAL:
                event = recv(ws, timeout=120)
                assert event.get("execution_id") == accepted["execution_id"], event
                events.append(event)
            outcomes.append(
                Outcome(
                    accepted["execution_id"], tool, events[-1]["status"], bool(statuses(events, "retrying")), events
                )
            )
    return outcomes


def stats_by_tool(stack) -> dict[str, dict[str, int]]:
    with stack.connect() as conn:
        rows = conn.execute(
            "SELECT t.name, s.* FROM mcp_tools_toolusagestats s JOIN mcp_tools_tool t ON t.id = s.tool_id"
        ).fetchall()
    return {row["name"]: {column: row[column] for column in STAT_COLUMNS} for row in rows}


def rows_of(stack, ids: list[str]) -> dict[str, dict]:
    with stack.connect() as conn:
        rows = conn.execute(
            "SELECT e.id::text AS id, e.status, e.cached, e.events, t.name AS tool "
            "FROM mcp_tools_toolexecution e JOIN mcp_tools_tool t ON t.id = e.tool_id "
            "WHERE e.id = ANY(%s::uuid[])",
            [ids],
        ).fetchall()
    return {row["id"]: row for row in rows}


def active_count(stack) -> int:
    with stack.connect() as conn:
        return conn.execute(
            "SELECT count(*) AS n FROM mcp_tools_toolexecution WHERE status IN ('pending', 'running', 'retrying')"
        ).fetchone()["n"]


def expected_stats(rows: list[dict]) -> dict[str, dict[str, int]]:
    """What the counters must have grown by: the rows, counted by tool and status."""
    grown: dict[str, Counter] = {}
    for row in rows:
        counter = grown.setdefault(row["tool"], Counter())
        counter["total_executions"] += 1
        counter[
            {
                "completed": "successful_executions",
                "failed": "failed_executions",
                "cancelled": "cancelled_executions",
            }.get(row["status"], "not_terminal")
        ] += 1
        counter["cached_executions"] += bool(row["cached"])
    return {tool: {column: counter[column] for column in STAT_COLUMNS} for tool, counter in grown.items()}


def stats_growth(before: dict, after: dict) -> dict[str, dict[str, int]]:
    return {
        tool: {column: after[tool][column] - before.get(tool, {}).get(column, 0) for column in STAT_COLUMNS}
        for tool in after
        if any(after[tool][c] != before.get(tool, {}).get(c, 0) for c in STAT_COLUMNS)
    }


def test_thousand_mixed_executions_end_with_stats_equal_to_the_rows(stack_ready):
    stack = stack_ready
    # Nothing from earlier tests may still be finishing: it would move the counters too.
    wait_until(lambda: active_count(stack) == 0, timeout=60, interval=0.5, what="earlier executions to end")
    stack.anthropic.set_default({"tokens": 8})
    stack.anthropic.set_script(ROTATION * (TOTAL // len(ROTATION) + 1))
    before = stats_by_tool(stack)
    started = time.monotonic()
    with not_found_server() as missing_url, concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
        futures = [
            pool.submit(run_client, stack.ws_url, stack.tokens["loader"], n * PER_CLIENT, missing_url)
            for n in range(CLIENTS)
        ]
        outcomes = [outcome for future in futures for outcome in future.result()]
    elapsed = time.monotonic() - started
    rows = rows_of(stack, [o.execution_id for o in outcomes])
    for outcome in outcomes:
        outcome.problems = execution_problems(outcome.events, tool=outcome.tool, row=rows.get(outcome.execution_id))
    growth, expected = stats_growth(before, stats_by_tool(stack)), expected_stats(list(rows.values()))
    broken = [(o.execution_id, o.problems) for o in outcomes if o.problems]
    seen = Counter(o.status for o in outcomes)
    retried = sum(o.retried for o in outcomes)
    write_load_section(outcomes, seen, retried, growth, expected, broken, elapsed)
    assert len(outcomes) == len(rows) == TOTAL
    assert not broken, f"{len(broken)} executions broke the protocol, e.g. {broken[:3]}"
    assert growth == expected, f"stats grew by {growth}, the rows count {expected}"
    assert seen["completed"] and seen["failed"] and seen["cancelled"] and retried, (seen, retried)


def write_load_section(
    outcomes, seen: Counter, retried: int, growth: dict, expected: dict, broken: list, elapsed: float
) -> None:
    cached = sum(bool(o.events[-1].get("cached")) for o in outcomes if o.status == "completed")
    rows = [
        [tool, *(f"{growth.get(tool, {}).get(c, 0)} / {expected[tool][c]}" for c in STAT_COLUMNS)]
        for tool in sorted(expected)
    ]
    verdict = (
        "ok: every execution ended once, as its client saw it; the stats equal the rows"
        if not broken and growth == expected
        else f"BROKEN: {len(broken)} executions broke the protocol; stats {'equal' if growth == expected else 'differ'}"
    )
    body = "\n".join(
        [
            f"{len(outcomes)} executions from {CLIENTS} WebSocket clients in {elapsed:.0f} s: "
            f"{seen['completed']} completed ({cached} from the cache), {seen['failed']} failed, "
            f"{seen['cancelled']} cancelled; {retried} were retried on the way.",
            "",
            "Counter growth in `ToolUsageStats` / the rows counted by status:",
            "",
            table(["Tool", "total", "successful", "failed", "cancelled", "cached"], rows),
            "",
            f"Verdict: {verdict}.",
        ]
    )
    write_section("load", body, complete=True)
