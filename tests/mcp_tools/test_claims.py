"""The fair-share claim, on the database itself (both topologies' databases: SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid

import pytest

from mcp_tools import services
from mcp_tools.engine import claims
from mcp_tools.models import ToolExecution

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
