"""The engine's writes to the execution rows: who runs what next, and status changes on the way.

Fair share. A queued execution is a row with status ``pending`` (or
``retrying`` after a lost worker) and no worker; each Celery message is only
a *token* that lets one worker slot run one of them. ``claim_next`` picks, at
the moment a slot is free, the oldest waiting execution of the user with the
fewest running ones, and claims it in one conditional UPDATE::

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

from django.db import connection, transaction
from django.db.models import Count, F, Min, Q, Value
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
    lock; SQLite: its write lock, taken when the transaction begins)."""
    with transaction.atomic():
        _one_claim_at_a_time()
        return _claim_fairly(worker=worker)


# The advisory lock's key: any constant of our own ("mcp-claim").
CLAIM_LOCK = 0x6D63705F636C6169


def _one_claim_at_a_time() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CLAIM_LOCK])


def _claim_fairly(*, worker: str) -> ToolExecution | None:
    waiting = list(
        ToolExecution.objects.filter(QUEUED)
        .values("user_id")
        .annotate(oldest=Min("created_at"))
        .order_by("oldest")[:CANDIDATE_USERS]
    )
    if not waiting:
        return None
    if len(waiting) > 1:
        running = {
            row["user_id"]: row["n"]
            for row in ToolExecution.objects.filter(RUNNING, user_id__in=[w["user_id"] for w in waiting])
            .values("user_id")
            .annotate(n=Count("pk"))
        }
        waiting.sort(key=lambda w: (running.get(w["user_id"], 0), w["oldest"]))
    for candidate in waiting:
        execution = _claim_oldest_of(candidate["user_id"], worker=worker)
        if execution is not None:
            logger.debug("Claimed %s of user %s (waiting users: %s)", execution.pk, candidate["user_id"], waiting)
            return execution
    return None


# How many waiting users one claim considers (the ones waiting longest); bounds the work per claim.
CANDIDATE_USERS = 200


def _claim_oldest_of(user_id: int, *, worker: str) -> ToolExecution | None:
    pk = (
        ToolExecution.objects.filter(QUEUED, user_id=user_id)
        .order_by("created_at")
        .values_list("pk", flat=True)
        .first()
    )
    return None if pk is None else claim(str(pk), worker=worker)


def claim(execution_id: str, *, worker: str) -> ToolExecution | None:
    """Claim one given waiting execution (``manage.py run_tool`` runs its own; a claim by fair share
    ends here too); None if it is not waiting."""
    claimed = ToolExecution.objects.filter(WAITING, pk=execution_id).update(
        status=Status.RUNNING,
        worker=worker,
        attempt=F("attempt") + 1,
        started_at=Coalesce(F("started_at"), Value(timezone.now())),
    )
    if not claimed:
        return None
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
