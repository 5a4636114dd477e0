"""The fair-share claim, on the database itself (both topologies' databases: SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connection
from django.db.models import Q

from mcp_tools import apps, outcomes, services
from mcp_tools.engine import claims
from mcp_tools.events import get_event_log
from mcp_tools.models import ToolExecution
from mcp_tools.results_cache import result_cache_store
from tests.conftest import make_user

pytestmark = pytest.mark.django_db(transaction=True)


def queued(user, n: int) -> ToolExecution:
    execution = services.execution_prepare(user=user, tool_name="generate_report", parameters={"data": {"n": n}})
    ToolExecution.objects.filter(pk=execution.pk).update(celery_task_id=str(uuid.uuid4()))
    return execution


def run_claims(n: int) -> list[ToolExecution]:
    return [claims.claim_next(worker="here:1:test") for _ in range(n)]


BOTH_DATABASES = pytest.mark.parametrize(
    "databases",
    [pytest.param("sqlite, memory log"), pytest.param("postgresql, redis log", marks=pytest.mark.production)],
)


@BOTH_DATABASES
def test_the_next_claim_is_the_oldest_run_of_the_user_with_the_fewest_running(tools, alice, bob, databases):
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


@BOTH_DATABASES
def test_a_released_run_is_claimed_again_as_a_new_attempt_and_an_ended_one_never(tools, alice, databases):
    released, cancelled = queued(alice, 0), queued(alice, 1)
    [first] = run_claims(1)
    started_at = ToolExecution.objects.get(pk=first.pk).started_at
    assert claims.release(str(first.pk), worker="here:1:test", attempt=1)  # its worker was lost
    ToolExecution.objects.filter(pk=cancelled.pk).update(status="cancelled")
    again = claims.claim_next(worker="elsewhere:1:test")
    assert (again.pk, again.status, again.worker, again.attempt) == (released.pk, "running", "elsewhere:1:test", 2)
    assert again.started_at == started_at  # the first start stays the start
    assert claims.claim_next(worker="elsewhere:1:test") is None


@BOTH_DATABASES
def test_claims_at_the_same_moment_take_each_execution_once(tools, alice, bob, databases):
    """Six slots freed together, on their own connections, drain thirty queued executions: each is
    claimed by exactly one of them, none twice, none left behind."""
    users = (alice, bob, make_user("carol"))
    runs = [queued(user, n) for n in range(10) for user in users]
    claimed: list[str] = []
    start = threading.Barrier(6)

    def slot(k: int) -> None:
        try:
            start.wait()
            while (execution := claims.claim_next(worker=f"slot:{k}:test")) is not None:
                claimed.append(str(execution.pk))
        finally:
            connection.close()

    slots = [threading.Thread(target=slot, args=(k,)) for k in range(6)]
    for thread in slots:
        thread.start()
    for thread in slots:
        thread.join()
    assert sorted(claimed) == sorted(str(run.pk) for run in runs)
    assert ToolExecution.objects.filter(status="running", attempt=1).count() == len(runs)


@BOTH_DATABASES
def test_a_recorded_but_unqueued_execution_is_never_claimed_by_a_token(tools, alice, databases):
    services.execution_prepare(user=alice, tool_name="generate_report", parameters={"data": {}})
    assert claims.claim_next(worker="here:1:test") is None


@BOTH_DATABASES
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


@BOTH_DATABASES
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


def test_a_sqlite_too_old_for_the_claim_is_refused_by_the_checks_with_a_clear_error(monkeypatch):
    """The claim's ``UPDATE … RETURNING`` needs SQLite 3.35: an older one is named at ``manage.py check``
    (and ``migrate``), not met as a syntax error at the first execution."""
    call_command("check")  # this machine's SQLite passes
    monkeypatch.setattr(apps.sqlite3, "sqlite_version_info", (3, 34, 1))
    monkeypatch.setattr(apps.sqlite3, "sqlite_version", "3.34.1")
    with pytest.raises(SystemCheckError, match=r"SQLite 3\.34\.1 is too old: the embedded default needs SQLite 3\.35"):
        call_command("check")


def test_the_index_the_claim_probes_holds_exactly_the_active_executions():
    """``execution_active_by_user`` spells ACTIVE_STATUSES out (a model's Meta cannot name them): kept equal here."""
    [index] = [i for i in ToolExecution._meta.indexes if i.name == "execution_active_by_user"]
    assert index.condition == Q(status__in=list(ToolExecution.ACTIVE_STATUSES))
    assert index.fields == ["user", "created_at"]
