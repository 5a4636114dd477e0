"""Fault injection on the production topology; generates docs/reliability.md's fault table.

One test per fault, each a row of the table (``ROWS``, in table order). A
row's test starts an execution from a real WebSocket client, injects its
fault — Claude errors scripted on the fake Messages API, pages that fail,
``kill -9`` of a worker, Redis or PostgreSQL stopped and started — follows
the execution to its end like a careful client, and checks
``client.execution_problems`` plus the fault's own expectation. The table
records what the client saw, the final database row and the verdict; the
test fails exactly when its row says ``BROKEN``. The table goes to
``test-artifacts/reliability/faults.md``; ``./dev docs`` copies it into the doc.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from uuid import uuid4

import pytest
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from tests.e2e.helpers import recv, send, ws_connect
from tests.reliability.client import Watcher, describe, execution_problems, replay_problems, statuses
from tests.reliability.infra import not_found_server
from tests.reliability.report import table, write_section
from tests.stack import free_port, wait_until

pytestmark = pytest.mark.production

ROWS = {
    "claude_529": "Claude answers 529 (overloaded) once, then streams",
    "claude_429": "Claude answers 429 with `retry-after: 1`, then streams",
    "claude_400": "Claude answers 400 (a permanent error)",
    "claude_overloaded_mid_stream": "Claude sends `overloaded_error` mid-stream, then streams",
    "claude_dropped": "Claude's connection drops mid-stream, then streams",
    "claude_stalled": "Claude's stream stalls past the 2 s read timeout, then streams",
    "claude_retries_exhausted": "Claude answers 529 on every attempt",
    "fetch_blocked": "summarize_content of the cloud metadata address (SSRF)",
    "fetch_404": "summarize_content of a page that answers 404",
    "fetch_unreachable": "summarize_content of an address nobody listens on",
    "cancel": "The client cancels mid-stream",
    "worker_killed": "`kill -9` of the worker process running it",
    "worker_host_lost": "A worker host lost: SIGKILL of the worker's whole process group",
    "worker_lost_not_repeatable": "`kill -9` of the worker running a tool marked not repeatable",
    "redis_flushed": "Redis flushed mid-stream: the live event log is lost",
    "redis_restarted": "Redis stopped mid-stream, started again",
    "postgres_restarted": "PostgreSQL stopped mid-stream, started again",
}
SLOW_STREAM = {"tokens": 120, "delay_ms": 20}  # about 2.5 s: time to strike mid-stream
# The stack's heartbeats (1 s, stale after 3 s, two missing looks, 1 s reaper passes): found within 6 s.
LOSS_DETECTION_BUDGET_S = 8
OUTAGE_ANSWER_TIMEOUT_S = 10


# --- The table -------------------------------------------------------------------


@dataclass
class Row:
    fault: str
    client_saw: str = "—"
    database: str = "—"
    problems: list[str] = field(default_factory=list)

    def expect(self, condition: bool, problem: str) -> None:
        if not condition:
            self.problems.append(problem)

    @property
    def verdict(self) -> str:
        return "ok: no event lost, one terminal state" if not self.problems else "BROKEN: " + "; ".join(self.problems)


class FaultTable:
    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}

    @contextmanager
    def row(self, key: str) -> Iterator[Row]:
        row = self.rows[key] = Row(ROWS[key])
        try:
            yield row
        except Exception as exc:
            row.problems.append(f"{type(exc).__name__}: {str(exc)[:400]}")
            raise
        if row.problems:
            pytest.fail(f"{row.fault}: " + "; ".join(row.problems), pytrace=False)

    def write(self) -> Path:
        rows = [[r.fault, r.client_saw, r.database, r.verdict] for key in ROWS if (r := self.rows.get(key))]
        body = table(["Fault", "What the client saw", "Final state in the database", "Verdict"], rows)
        return write_section("faults", body, complete=set(self.rows) == set(ROWS))


@pytest.fixture(scope="module")
def fault_table() -> Iterator[FaultTable]:
    faults = FaultTable()
    yield faults
    faults.write()


# --- Helpers ----------------------------------------------------------------------


def report(stack, *, tool: str = "generate_report", parameters: dict | None = None) -> Watcher:
    """Start an execution as alice; unique data, so never answered from the cache."""
    parameters = parameters or {"data": {"run": uuid4().hex}}
    return Watcher(stack.ws_url, stack.tokens["alice"]).execute(tool, parameters)


def is_delta(event: dict) -> bool:
    return event["type"] == "execution.delta"


def observe(row: Row, stack, watcher: Watcher, *, timeout: float = 40) -> dict | None:
    """Follow to the end, then fill the row and check the protocol's promises."""
    try:
        watcher.to_the_end(timeout=timeout)
    finally:
        row.client_saw = describe(watcher)
    db = stack.terminal_row(watcher.execution_id)
    row.database = describe_row(db)
    row.problems += execution_problems(watcher.events, tool=watcher.tool, row=db)
    row.problems += replay_problems(stack.ws_url, stack.tokens["alice"], watcher.execution_id, watcher.events)
    watcher.close()
    return db


def describe_row(db: dict | None) -> str:
    if db is None:
        return "no row"
    code = f" ({db['error_code']})" if db["error_code"] else ""
    return f"{db['status']}{code}, attempt {db['attempt']}"


def end(watcher: Watcher) -> str:
    return watcher.events[-1]["type"].removeprefix("execution.") if watcher.events else "nothing"


def reasons(watcher: Watcher) -> list[str]:
    return [e.get("reason") for e in statuses(watcher.events, "retrying")]


def error_code(watcher: Watcher) -> str | None:
    return watcher.events[-1].get("error", {}).get("code") if watcher.events else None


def deltas_before_retry(watcher: Watcher) -> int:
    retrying = statuses(watcher.events, "retrying")
    if not retrying:
        return 0
    return sum(is_delta(e) for e in watcher.events[: watcher.events.index(retrying[0])])


def assert_retried_once_then_completed(row: Row, watcher: Watcher, reason: str | set[str]) -> None:
    allowed = {reason} if isinstance(reason, str) else reason
    row.expect(end(watcher) == "completed", f"ended {end(watcher)}, not completed")
    row.expect(
        len(reasons(watcher)) == 1 and reasons(watcher)[0] in allowed,
        f"retry reasons {reasons(watcher)}, expected one of {sorted(allowed)}",
    )


# --- Claude ----------------------------------------------------------------------------


def test_claude_529_is_retried_and_completes(stack_ready, fault_table):
    with fault_table.row("claude_529") as row:
        stack_ready.anthropic.set_script([{"status": 529}])
        watcher = report(stack_ready)
        db = observe(row, stack_ready, watcher)
        assert_retried_once_then_completed(row, watcher, "llm_overloaded")
        row.expect(db is not None and db["attempt"] == 2, "the row does not record attempt 2")


def test_claude_429_waits_for_retry_after_then_completes(stack_ready, fault_table):
    with fault_table.row("claude_429") as row:
        stack_ready.anthropic.set_script([{"status": 429, "retry_after": 1}])
        watcher = report(stack_ready)
        observe(row, stack_ready, watcher)
        assert_retried_once_then_completed(row, watcher, "llm_rate_limited")
        retrying = (
            next(i for i, e in enumerate(watcher.events) if e.get("status") == "retrying") if reasons(watcher) else None
        )
        if retrying is not None:
            waited = watcher.arrivals[retrying + 1] - watcher.arrivals[retrying]
            row.expect(waited >= 0.8, f"retried after {waited:.2f}s, before retry-after (1 s)")


def test_claude_400_fails_at_once_without_retry(stack_ready, fault_table):
    with fault_table.row("claude_400") as row:
        stack_ready.anthropic.set_script([{"status": 400}])
        watcher = report(stack_ready)
        observe(row, stack_ready, watcher)
        row.expect(
            end(watcher) == "failed" and error_code(watcher) == "llm_error",
            f"ended {end(watcher)} ({error_code(watcher)}), not failed (llm_error)",
        )
        row.expect(not reasons(watcher), f"retried: {reasons(watcher)}")
        row.expect(len(stack_ready.anthropic.requests()) == 1, "Claude was called more than once")


def test_claude_overloaded_mid_stream_restarts_the_output_and_completes(stack_ready, fault_table):
    with fault_table.row("claude_overloaded_mid_stream") as row:
        stack_ready.anthropic.set_script(
            [{"tokens": 40, "delay_ms": 20, "error_after": 10, "error_type": "overloaded_error"}]
        )
        watcher = report(stack_ready)
        observe(row, stack_ready, watcher)
        assert_retried_once_then_completed(row, watcher, "llm_overloaded")
        row.expect(deltas_before_retry(watcher) > 0, "no delta before the retry: the fault did not strike mid-stream")


def test_claude_dropped_stream_is_retried_and_completes(stack_ready, fault_table):
    with fault_table.row("claude_dropped") as row:
        stack_ready.anthropic.set_script([{"tokens": 40, "delay_ms": 20, "drop_after": 10}])
        watcher = report(stack_ready)
        observe(row, stack_ready, watcher)
        assert_retried_once_then_completed(row, watcher, {"llm_stream_interrupted", "llm_unavailable"})


def test_claude_stalled_stream_times_out_and_is_retried(stack_ready, fault_table):
    with fault_table.row("claude_stalled") as row:
        stack_ready.anthropic.set_script([{"tokens": 40, "delay_ms": 20, "stall_after": 10, "stall_s": 30}])
        watcher = report(stack_ready)
        observe(row, stack_ready, watcher, timeout=30)
        assert_retried_once_then_completed(row, watcher, {"llm_stream_interrupted", "llm_timeout", "llm_unavailable"})


def test_claude_failing_every_attempt_ends_failed_after_the_retries(stack_ready, fault_table):
    with fault_table.row("claude_retries_exhausted") as row:
        stack_ready.anthropic.set_default({"status": 529})
        watcher = report(stack_ready)
        db = observe(row, stack_ready, watcher)
        row.expect(
            end(watcher) == "failed" and error_code(watcher) == "llm_overloaded",
            f"ended {end(watcher)} ({error_code(watcher)}), not failed (llm_overloaded)",
        )
        row.expect(reasons(watcher) == ["llm_overloaded"] * 3, f"retries {reasons(watcher)}, expected 3")
        row.expect(db is not None and db["attempt"] == 4, "the row does not record attempt 4")


# --- Fetching ------------------------------------------------------------------------------


def check_fetch_failure(row: Row, stack, url: str, code: str, *, retried: bool) -> None:
    watcher = report(stack, tool="summarize_content", parameters={"url": url})
    observe(row, stack, watcher)
    row.expect(
        end(watcher) == "failed" and error_code(watcher) == code,
        f"ended {end(watcher)} ({error_code(watcher)}), not failed ({code})",
    )
    row.expect(bool(reasons(watcher)) == retried, f"retries: {reasons(watcher)}")
    row.expect(not stack.anthropic.requests(), "Claude was called for a page that was never fetched")


def test_fetch_of_the_metadata_address_is_refused(stack_ready, fault_table):
    with fault_table.row("fetch_blocked") as row:
        check_fetch_failure(
            row, stack_ready, "http://169.254.169.254/latest/meta-data/", "blocked_address", retried=False
        )


def test_fetch_of_a_missing_page_fails_without_retry(stack_ready, fault_table):
    with fault_table.row("fetch_404") as row, not_found_server() as url:
        check_fetch_failure(row, stack_ready, url, "fetch_failed", retried=False)


def test_fetch_of_an_unreachable_address_is_retried_then_fails(stack_ready, fault_table):
    with fault_table.row("fetch_unreachable") as row:
        check_fetch_failure(row, stack_ready, f"http://127.0.0.1:{free_port()}/", "fetch_unavailable", retried=True)


# --- Cancel and worker loss ------------------------------------------------------------------


def test_cancel_mid_stream_ends_cancelled_and_stops_claude(stack_ready, fault_table):
    with fault_table.row("cancel") as row:
        stack_ready.anthropic.set_default(SLOW_STREAM)
        watcher = report(stack_ready)
        watcher.until(is_delta)
        send(watcher.ws, {"type": "cancel", "execution_id": watcher.execution_id})
        observe(row, stack_ready, watcher)
        row.expect(end(watcher) == "cancelled", f"ended {end(watcher)}, not cancelled")
        calls = stack_ready.anthropic.requests(wait=1)
        row.expect(calls[-1]["disconnected_early"], "the Claude stream was not closed on cancel")


def worker_running(stack, execution_id: str):
    """The live worker process whose engine runs the execution (the row names the engine: host:pid:id)."""

    def find():
        engine = (stack.row(execution_id) or {}).get("worker") or ""
        pid = int(engine.split(":")[1]) if engine.count(":") == 2 else None
        return next((w for w in stack.live_workers() if w.popen.pid == pid), None)

    return wait_until(find, timeout=10, what=f"the worker running execution {execution_id}")


def check_rerun_elsewhere(row: Row, watcher: Watcher, killed_at: float) -> None:
    """The run went on in the other worker: one worker_lost retry, then completed; with the figures."""
    row.expect(
        end(watcher) == "completed" and reasons(watcher) == ["worker_lost"],
        f"ended {end(watcher)} with retry reasons {reasons(watcher)}: not run again after the loss",
    )
    retry = next((i for i, e in enumerate(watcher.events) if e.get("reason") == "worker_lost"), None)
    if retry is None:
        return
    detected = watcher.arrivals[retry] - killed_at
    resumed = next(
        (
            watcher.arrivals[i] - killed_at
            for i, e in enumerate(watcher.events)
            if i > retry and e.get("status") == "running"
        ),
        None,
    )
    row.client_saw += (
        f"; loss detected after {detected:.1f} s, running again on the other worker after {resumed:.1f} s"
        if resumed is not None
        else ""
    )
    row.expect(detected <= LOSS_DETECTION_BUDGET_S, f"the loss was detected after {detected:.1f} s")


def test_worker_process_killed_mid_stream_runs_again_on_the_other_worker(stack_ready, fault_table):
    with fault_table.row("worker_killed") as row:
        stack_ready.anthropic.set_default(SLOW_STREAM)
        watcher = report(stack_ready)
        watcher.until(is_delta)
        worker = worker_running(stack_ready, watcher.execution_id)
        killed_at = time.monotonic()
        os.kill(worker.popen.pid, signal.SIGKILL)
        observe(row, stack_ready, watcher, timeout=60)
        check_rerun_elsewhere(row, watcher, killed_at)


def test_worker_host_lost_mid_stream_runs_again_on_the_other_worker(stack_ready, fault_table):
    with fault_table.row("worker_host_lost") as row:
        stack_ready.anthropic.set_default(SLOW_STREAM)
        watcher = report(stack_ready)
        watcher.until(is_delta)
        worker = worker_running(stack_ready, watcher.execution_id)
        killed_at = time.monotonic()
        os.killpg(worker.popen.pid, signal.SIGKILL)  # its own session: the whole process group
        worker.popen.wait(10)
        observe(row, stack_ready, watcher, timeout=60)
        check_rerun_elsewhere(row, watcher, killed_at)


def test_worker_killed_while_running_a_tool_not_safe_to_repeat_fails_worker_lost(stack_ready, fault_table):
    with fault_table.row("worker_lost_not_repeatable") as row, not_repeatable(stack_ready, "generate_report"):
        stack_ready.anthropic.set_default(SLOW_STREAM)
        watcher = report(stack_ready)
        watcher.until(is_delta)
        os.kill(worker_running(stack_ready, watcher.execution_id).popen.pid, signal.SIGKILL)
        observe(row, stack_ready, watcher, timeout=60)
        row.expect(
            end(watcher) == "failed" and error_code(watcher) == "worker_lost" and not reasons(watcher),
            f"ended {end(watcher)} ({error_code(watcher)}), retries {reasons(watcher)}",
        )


@contextmanager
def not_repeatable(stack, tool: str) -> Iterator[None]:
    with stack.connect() as conn:
        conn.execute("UPDATE mcp_tools_tool SET repeatable = false WHERE name = %s", [tool])
    try:
        yield
    finally:
        with stack.connect() as conn:
            conn.execute("UPDATE mcp_tools_tool SET repeatable = true WHERE name = %s", [tool])


def test_redis_flushed_mid_stream_restarts_the_log_under_a_new_epoch(stack_ready, fault_table):
    with fault_table.row("redis_flushed") as row:
        stack_ready.anthropic.set_default(SLOW_STREAM)
        watcher = report(stack_ready)
        watcher.until(is_delta)
        stack_ready.redis.flush()
        observe(row, stack_ready, watcher, timeout=60)
        row.expect(watcher.resets == 1, f"the client was told to reset {watcher.resets} times")
        row.expect(end(watcher) == "completed", f"ended {end(watcher)}")
        row.expect("event_log_lost" in reasons(watcher), f"retry reasons {reasons(watcher)}")


# --- Redis and PostgreSQL ------------------------------------------------------------------


def outage_probe(stack) -> str:
    """Execute during an outage: the answer must be an error or a close, never silence."""
    deadline = time.monotonic() + OUTAGE_ANSWER_TIMEOUT_S
    try:
        with ws_connect(stack.ws_url, stack.tokens["prober"]) as ws:
            send(
                ws,
                {
                    "type": "execute",
                    "tool": "generate_report",
                    "parameters": {"data": {"probe": 1}},
                    "use_cache": False,
                },
            )
            answer = recv(ws, timeout=max(0.1, deadline - time.monotonic()))
            return f"error {answer['code']}" if answer["type"] == "error" else f"unexpected {answer['type']}"
    except ConnectionClosed as exc:
        return f"closed {exc.rcvd.code if exc.rcvd else '(no close frame)'}"
    except InvalidHandshake as exc:
        return f"handshake refused ({exc})"
    except TimeoutError:
        return "silence"


def fresh_execution_works(stack, *, timeout: float = 20) -> str:
    """After the outage a new execution completes; errors meanwhile are retried like a client would."""
    deadline = time.monotonic() + timeout
    tries = 0
    while time.monotonic() < deadline:
        tries += 1
        try:
            watcher = report(stack)
            watcher.to_the_end(timeout=max(1.0, deadline - time.monotonic()))
            watcher.close()
            return f"{end(watcher)} after {tries} tr{'y' if tries == 1 else 'ies'}"
        except (AssertionError, OSError, InvalidHandshake, ConnectionClosed, TimeoutError):
            time.sleep(0.5)  # a client's retry pace
    return f"no completed execution in {timeout:.0f}s ({tries} tries)"


def prober_leftovers(stack) -> list[str]:
    """Rows created by executes that were answered with an error ("nothing was done")."""
    with stack.connect() as conn:
        rows = conn.execute(
            "SELECT e.status FROM mcp_tools_toolexecution e JOIN auth_user u ON u.id = e.user_id "
            "WHERE u.username = 'prober'"
        ).fetchall()
    return [r["status"] for r in rows]


def check_outage(row: Row, stack, watcher: Watcher, probe: str) -> None:
    db = observe(row, stack, watcher, timeout=60)
    fresh = fresh_execution_works(stack)
    row.client_saw += f"; an execute during the outage: {probe}; a new execution after: {fresh}"
    row.expect(probe.startswith(("error", "closed", "handshake")), f"an execute during the outage got {probe}")
    row.expect(fresh.startswith("completed"), f"after the outage: {fresh}")
    leftovers = prober_leftovers(stack) if probe.startswith("error") else []
    row.expect(not leftovers, f"an execute answered with an error left rows behind: {leftovers}")
    row.expect(db is not None and db["status"] in ("completed", "failed", "cancelled"), "the row is not final")


def test_redis_restart_mid_stream_clients_can_act_and_service_recovers(stack_ready, fault_table):
    with fault_table.row("redis_restarted") as row:
        stack_ready.anthropic.set_default(SLOW_STREAM)
        watcher = report(stack_ready)
        watcher.until(is_delta)
        stack_ready.redis.stop()
        try:
            probe = outage_probe(stack_ready)
            # Down until the following client is told (its stream cannot go on without Redis).
            told = watcher.until_disrupted(timeout=OUTAGE_ANSWER_TIMEOUT_S)
        except TimeoutError:
            told = "nothing"
        finally:
            stack_ready.redis.start()
        row.expect(told.startswith(("error", "closed")), f"the following client was told {told} during the outage")
        check_outage(row, stack_ready, watcher, probe)


def test_postgres_restart_mid_stream_clients_can_act_and_service_recovers(stack_ready, fault_table):
    with fault_table.row("postgres_restarted") as row:
        stack_ready.anthropic.set_default(SLOW_STREAM)
        watcher = report(stack_ready)
        watcher.until(is_delta)
        stack_ready.postgres.stop()
        try:
            probe = outage_probe(stack_ready)
            # Down until the stream ends, so the execution's final write meets the outage.
            watcher.until(lambda event: False, timeout=8)
        except TimeoutError:
            pass  # it did not end while PostgreSQL was down; the checks below still apply
        finally:
            stack_ready.postgres.start()
        ended_during_outage = watcher.ended
        check_outage(row, stack_ready, watcher, probe)
        row.client_saw += f"; the execution {'ended' if ended_during_outage else 'did not end'} during the outage"
