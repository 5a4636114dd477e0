"""The engine's writes to the execution rows: who runs what next, and status changes on the way.

Fair share. A queued execution is a row with status ``pending`` (or
``retrying`` after a lost worker) and no worker; each Celery message is only
a *token* that lets one worker slot run one of them. ``claim_next`` picks, at
the moment a slot is free, the oldest waiting execution of the user with the
fewest running ones, and claims it, all in one conditional UPDATE (``CLAIM_SQL``)::

    users waiting (oldest first) ──▶ fewest running ──▶ that user's oldest ──▶ UPDATE … WHERE still unclaimed

so one user's queue of twenty never keeps a second user's single run
waiting behind it, a lone user's runs still start at once, and a user's own
runs start in the order they were asked for. Every waiting execution has at
least one token in the broker (one per enqueue and per requeue), so none is
left behind; a token that finds nothing to claim is simply done.

Claims are serialised (one short transaction each, under an advisory lock
on PostgreSQL), so the running counts a claim reads are the ones it acts on.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import connection, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from .. import metrics
from ..models import ToolExecution

logger = logging.getLogger(__name__)

Status = ToolExecution.Status
WAITING = Q(status__in=[Status.PENDING, Status.RETRYING], worker="")
# In the queue: waiting with a token (``execution_prepare``'s executions are run by whoever prepared them).
QUEUED = WAITING & Q(celery_task_id__isnull=False)
RUNNING = Q(status__in=[Status.RUNNING, Status.RETRYING]) & ~Q(worker="")


def claim_next(*, worker: str) -> ToolExecution | None:
    """Claim the next execution by fair share for ``worker``; None if nothing waits.

    One claim at a time, across every worker: two slots freed at the same moment
    must not both count the users' running executions before either claims, or
    both would pick the same busy user (PostgreSQL: a transaction-scoped advisory
    lock; SQLite: its write lock, taken when the transaction begins). The lock is
    held for one statement; the claimed row is read after it is released."""
    with transaction.atomic():
        _one_claim_at_a_time()
        execution_id = _claim_fairly(worker=worker)
    if execution_id is None:
        return None
    logger.debug("Claimed %s by fair share", execution_id)
    return _claimed(execution_id)


# The advisory lock's key: any constant of our own ("mcp-claim").
CLAIM_LOCK = 0x6D63705F636C6169


def _one_claim_at_a_time() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CLAIM_LOCK])


# How many waiting users one claim considers (the ones waiting longest); bounds the work per claim.
CANDIDATE_USERS = 200

# The whole choice in one statement (SQLite 3.35+ and PostgreSQL): waiting users, oldest first;
# the one with the fewest running executions; that user's oldest queued run, claimed if it is still
# waiting. The WAITING and RUNNING conditions here are the Q objects above, spelled in SQL.
#
# Each candidate's running count is a correlated subquery: one probe of the partial index of active
# executions by user (``execution_active_by_user``) per candidate, whatever the table's statistics
# say. As a join of two grouped CTEs, PostgreSQL chose its plan from statistics taken before a burst
# of waiting rows and rescanned a user's whole history per candidate (docs/benchmarks.md).
#
# If the chosen row stopped waiting after the statement looked (a cancel committed in between, on
# PostgreSQL), nothing is claimed and the token is done: that row no longer needs its own token,
# so every execution still waiting keeps one.
CLAIM_SQL = """
WITH waiting AS (
    SELECT user_id, MIN(created_at) AS oldest FROM {table}
    WHERE status IN (%(pending)s, %(retrying)s) AND worker = '' AND celery_task_id IS NOT NULL
    GROUP BY user_id ORDER BY oldest LIMIT %(candidates)s
), pick AS (
    SELECT user_id FROM waiting
    ORDER BY (
        SELECT COUNT(*) FROM {table} AS running
        WHERE running.user_id = waiting.user_id AND running.status IN (%(running)s, %(retrying)s)
          AND running.worker <> ''
    ), oldest
    LIMIT 1
)
UPDATE {table}
SET status = %(running)s, worker = %(worker)s, attempt = attempt + 1, started_at = COALESCE(started_at, %(now)s)
WHERE id = (
    SELECT id FROM {table}
    WHERE status IN (%(pending)s, %(retrying)s) AND worker = '' AND celery_task_id IS NOT NULL
      AND user_id = (SELECT user_id FROM pick)
    ORDER BY created_at LIMIT 1
) AND status IN (%(pending)s, %(retrying)s) AND worker = ''
RETURNING id
"""


def _claim_fairly(*, worker: str) -> str | None:
    """The claimed execution's id; None if nothing waits."""
    parameters: dict[str, Any] = {
        "pending": Status.PENDING,
        "retrying": Status.RETRYING,
        "running": Status.RUNNING,
        "candidates": CANDIDATE_USERS,
        "worker": worker,
        "now": connection.ops.adapt_datetimefield_value(timezone.now()),
    }
    with connection.cursor() as cursor:
        cursor.execute(CLAIM_SQL.format(table=ToolExecution._meta.db_table), parameters)
        row = cursor.fetchone()
    return None if row is None else str(row[0])


def claim(execution_id: str, *, worker: str) -> ToolExecution | None:
    """Claim one given waiting execution (``manage.py run_tool`` runs its own; a claim by fair share
    ends here too); None if it is not waiting."""
    claimed = ToolExecution.objects.filter(WAITING, pk=execution_id).update(
        status=Status.RUNNING,
        worker=worker,
        attempt=F("attempt") + 1,
        started_at=Coalesce(F("started_at"), Value(timezone.now())),
    )
    return _claimed(execution_id) if claimed else None


def _claimed(execution_id: str) -> ToolExecution:
    execution = ToolExecution.objects.select_related("tool", "user").get(pk=execution_id)
    metrics.execution_claimed(execution)
    return execution


def set_status(execution_id: str, *, worker: str, status: str, attempt: int) -> bool:
    """A status change of a run in progress; False if the execution ended or another worker has it."""
    return bool(
        ToolExecution.objects.filter(pk=execution_id, worker=worker, status__in=ToolExecution.ACTIVE_STATUSES).update(
            status=status, attempt=attempt
        )
    )


def set_epoch(execution_id: str, *, epoch: str) -> None:
    """The live log was lost and started again under a new epoch."""
    ToolExecution.objects.filter(pk=execution_id).update(epoch=epoch)


def release(execution_id: str, *, worker: str, attempt: int) -> bool:
    """Give a running execution back to the queue (a lost worker's run goes again): False if it moved on."""
    return bool(
        ToolExecution.objects.filter(RUNNING, pk=execution_id, worker=worker, attempt=attempt).update(
            status=Status.RETRYING, worker=""
        )
    )
