"""The fair-share claim, on the database itself (both topologies' databases: SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.db import connection

from mcp_tools import outcomes, services
from mcp_tools.engine import claims
from mcp_tools.events import get_event_log
from mcp_tools.models import ToolExecution
from mcp_tools.results_cache import result_cache_store

pytestmark = pytest.mark.django_db(transaction=True)


def queued(user, n: int) -> ToolExecution:
    execution = services.execution_prepare(user=user, tool_name="generate_report", parameters={"data": {"n": n}})
    ToolExecution.objects.filter(pk=execution.pk).update(celery_task_id=str(uuid.uuid4()))
    return execution


def run_claims(n: int) -> list[ToolExecution]:
    return [claims.claim_next(worker="here:1:test") for _ in range(n)]


def test_the_next_claim_is_the_oldest_run_of_the_user_with_the_fewest_running(tools, alice, bob):
    a_runs = [queued(alice, n) for n in range(5)]
    first, second = run_claims(2)
    assert [first.pk, second.pk] == [a_runs[0].pk, a_runs[1].pk]  # alone: in order, at once
    b_run = queued(bob, 0)
    [third] = run_claims(1)
    assert third.pk == b_run.pk  # bob has none running, alice two
    ToolExecution.objects.filter(pk=first.pk).update(status="completed", worker="")
    fourth, fifth = run_claims(2)
    assert [fourth.pk, fifth.pk] == [a_runs[2].pk, a_runs[3].pk]
    assert claims.claim_next(worker="here:1:test").pk == a_runs[4].pk
    assert claims.claim_next(worker="here:1:test") is None


def test_a_recorded_but_unqueued_execution_is_never_claimed_by_a_token(tools, alice):
    services.execution_prepare(user=alice, tool_name="generate_report", parameters={"data": {}})
    assert claims.claim_next(worker="here:1:test") is None


@pytest.mark.parametrize(
    "databases",
    [pytest.param("sqlite, memory log"), pytest.param("postgresql, redis log", marks=pytest.mark.production)],
)
def test_a_queued_execution_is_never_claimable_before_its_log_holds_pending(tools, alice, monkeypatch, databases):
    """An engine claims a queued execution as soon as its row is visible to other connections (a token of
    any execution may claim it): by then its log must hold ``pending`` (seq 1), or the run finds no log,
    takes it for lost and starts a new epoch. Checked at the worst moment: an engine claims from its own
    connection just before the log is created."""
    log = get_event_log()
    create_log = log.create
    seen: list[tuple[str | None, int]] = []

    def engine_claims_now(execution_id: str) -> None:
        try:
            # Only a row other connections can see is claimable (on SQLite, claiming would wait for the lock).
            if ToolExecution.objects.filter(claims.QUEUED, pk=execution_id).exists():
                claimed = claims.claim_next(worker="elsewhere:1:test")
                seen.append((claimed and str(claimed.pk), log.read(execution_id).last_seq))
        finally:
            connection.close()

    def create(entry):
        engine = threading.Thread(target=engine_claims_now, args=(entry.execution_id,))
        engine.start()
        engine.join()
        return create_log(entry)

    monkeypatch.setattr(log, "create", create)
    monkeypatch.setattr(services, "execution_send_tokens", lambda executions: None)  # no worker here
    execution = services.execution_start_uncached(user=alice, tool_name="generate_report", parameters={"data": {}})
    assert all(last_seq >= 1 for _, last_seq in seen), f"claimed with no event logged: {seen}"
    if not seen:  # nothing was claimable then; now the execution is, with its log
        assert claims.claim_next(worker="here:1:test").pk == execution.pk
    [pending] = log.read(str(execution.pk)).events
    assert (pending["seq"], pending["type"], pending["status"]) == (1, "execution.status", "pending")


@pytest.mark.parametrize(
    "databases",
    [pytest.param("sqlite, memory log"), pytest.param("postgresql, redis log", marks=pytest.mark.production)],
)
def test_an_execution_answered_from_the_cache_is_never_claimable(tools, alice, monkeypatch, databases):
    """An execution the cache answers is not queued: it sends no token, and no engine may claim it while the
    answer is written. Claimed by another execution's token, it would run a second time beside its cached
    answer, and that other execution, its token spent, would wait for the reaper's rescue."""
    result_cache_store("generate_report", {"data": {"cached": 1}}, {"report": "r"}, "r")
    claimed: list[ToolExecution | None] = []

    def engine_claims_now() -> None:
        try:
            claimed.append(claims.claim_next(worker="elsewhere:1:test"))
        finally:
            connection.close()

    end_execution = outcomes.end_execution

    def answered(execution, **kwargs):
        engine = threading.Thread(target=engine_claims_now)
        engine.start()
        engine.join()
        return end_execution(execution, **kwargs)

    tokens: list[ToolExecution] = []
    monkeypatch.setattr(outcomes, "end_execution", answered)
    monkeypatch.setattr(services, "execution_send_tokens", tokens.extend)
    execution = services.execution_start(user=alice, tool_name="generate_report", parameters={"data": {"cached": 1}})
    execution.refresh_from_db()
    assert (execution.status, execution.cached, execution.attempt) == ("completed", True, 1)
    assert claimed == [None] and tokens == []
    events = get_event_log().read(str(execution.pk)).events
    assert [(e["type"], e.get("status")) for e in events] == [
        ("execution.status", "pending"),
        ("execution.status", "running"),
        ("execution.delta", None),
        ("execution.completed", "completed"),
    ]
