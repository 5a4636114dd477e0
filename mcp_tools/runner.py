"""Running one execution: attempts, retries, time limit, the terminal event.

``execution_run`` is the body of the Celery task (and of the inline path):

    pending ─▶ running ─▶ deltas … ─▶ completed
                 │  transient error (overloaded, dropped stream, fetch timeout)
                 ▼
              retrying(attempt, reason) ─▶ backoff ─▶ running ─▶ deltas from scratch …
                 permanent error, timeout, retries used up ─▶ failed
    cancel (from anywhere) ─▶ cancelled; the worker sees its next append refused and stops.

Nothing is marked failed before a retry: an execution reaches exactly one
terminal state, and the database sees a constant number of writes per attempt
(running, then the final write), whatever the number of tokens.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import connection
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone
from redis.exceptions import RedisError

from .errors import ExecutionTimeout, PermanentToolError, ToolError, TransientToolError
from .events import ExecutionPublisher, completed_event, failed_event
from .liveness import Heartbeat
from .models import ToolExecution
from .providers import get_provider
from .services import execution_finalize, publisher_for, result_cache_store
from .tools import IMPLEMENTATIONS, ExecutionStopped, ToolContext

logger = logging.getLogger(__name__)

# How often a backoff wait looks whether the execution was cancelled meanwhile.
BACKOFF_POLL_S = 0.2
# How often a run whose event log became unreachable looks whether it is back.
EVENT_STORE_POLL_S = 0.5


class _Run:
    """State of one pass of ``execution_run`` over an execution."""

    def __init__(self, execution: ToolExecution, publisher: ExecutionPublisher) -> None:
        self.execution = execution
        self.publisher = publisher
        self.started_at = execution.started_at or timezone.now()
        self.deadline = time.monotonic() + execution.tool.timeout
        self.config = settings.MCP_CONFIG

    def duration_ms(self) -> int:
        return int((timezone.now() - self.started_at).total_seconds() * 1000)

    def check(self) -> None:
        if time.monotonic() > self.deadline:
            raise ExecutionTimeout(f"{self.execution.tool.name} ran past its {self.execution.tool.timeout}s limit.")

    def set_status(self, status: str, attempt: int) -> bool:
        """Conditional update: never revive an execution that ended meanwhile."""
        return bool(ToolExecution.objects.filter(pk=self.execution.pk, status__in=ToolExecution.ACTIVE_STATUSES)
                    .update(status=status, attempt=attempt, started_at=Coalesce(F("started_at"), timezone.now()),
                            heartbeat_at=timezone.now()))

    def fail(self, error: ToolError | Exception, attempt: int) -> None:
        code = getattr(error, "code", "internal_error")
        message = getattr(error, "message", None) or "The tool failed unexpectedly."
        duration_ms = self.duration_ms()

        def record() -> None:
            execution_finalize(self.execution, status=ToolExecution.Status.FAILED, duration_ms=duration_ms,
                               error=message, error_code=code, attempt=attempt)
            _release_database_connection()  # finish() then waits on the channel layer without holding it

        self.publisher.finish(failed_event(code, message, duration_ms=duration_ms), on_claimed=record)

    def complete(self, result: dict[str, Any], ctx: ToolContext, attempt: int, use_cache: bool) -> None:
        duration_ms = self.duration_ms()

        def record() -> None:
            execution_finalize(self.execution, status=ToolExecution.Status.COMPLETED, duration_ms=duration_ms,
                               result=result, attempt=attempt, input_tokens=ctx.usage.input_tokens,
                               output_tokens=ctx.usage.output_tokens)
            if use_cache:
                result_cache_store(self.execution.tool, self.execution.parameters, result)
            _release_database_connection()  # finish() then waits on the channel layer without holding it

        self.publisher.finish(completed_event(result, duration_ms=duration_ms, cached=False), on_claimed=record)

    def backoff(self, attempt: int, retry_after: float | None) -> None:
        """Exponential backoff with full jitter; ``retry-after`` wins when given."""
        cap = self.config["RETRY_BACKOFF_MAX_S"]
        if retry_after is not None:
            delay = min(retry_after, cap)
        else:
            delay = random.uniform(0, min(cap, self.config["RETRY_BACKOFF_S"] * 2 ** (attempt - 2)))
        waiter = threading.Event()
        end = time.monotonic() + delay
        while time.monotonic() < end and not self._ended_elsewhere():
            waiter.wait(min(BACKOFF_POLL_S, max(0.0, end - time.monotonic())))

    def wait_for_event_store(self) -> bool:
        """Poll the event log until it answers; False once the time limit is reached."""
        waiter = threading.Event()
        while time.monotonic() < self.deadline:
            if self.publisher.log.available():
                return True
            waiter.wait(EVENT_STORE_POLL_S)
        return False

    def _ended_elsewhere(self) -> bool:
        try:
            return self.publisher.log.is_ended(self.publisher.execution_id)
        except RedisError:
            return False  # cannot tell during an outage; keep waiting


def _release_database_connection() -> None:
    """Hand the connection back while the provider streams (seconds to minutes).

    Held for the whole stream, it capped a worker at its pool size (20 streams
    at once, bench/); the final write takes one again. Not inside a
    transaction (the inline path under a test's atomic block).
    """
    if not connection.in_atomic_block:
        connection.close()


def execution_run(execution_id: str, *, use_cache: bool = True) -> None:
    with Heartbeat(execution_id):
        _execution_run(execution_id, use_cache=use_cache)


def _execution_run(execution_id: str, *, use_cache: bool) -> None:
    try:
        execution = ToolExecution.objects.select_related("tool", "user").get(pk=execution_id)
    except ToolExecution.DoesNotExist:
        logger.warning("Execution %s vanished before it ran", execution_id)
        return
    publisher = publisher_for(execution)
    if execution.is_terminal or publisher.log.is_ended(execution_id):
        return
    run = _Run(execution, publisher)
    implementation = IMPLEMENTATIONS.get(execution.tool.name)
    max_attempts = run.config["MAX_RETRIES"] + 1
    attempt = execution.attempt
    # attempt > 0: an earlier delivery started and its worker died (redelivery).
    reason, message, retry_after = ("worker_lost", "The worker running it stopped.", None) if attempt else (None, "", None)
    while True:
        attempt += 1
        if reason:
            if attempt > max_attempts:
                run.fail(ToolError(message, code=reason), attempt - 1)
                return
            if publisher.status(ToolExecution.Status.RETRYING, attempt=attempt, reason=reason, message=message) is None:
                return
            run.set_status(ToolExecution.Status.RETRYING, attempt)
            run.backoff(attempt, retry_after)
        if not run.set_status(ToolExecution.Status.RUNNING, attempt):
            return
        if publisher.status(ToolExecution.Status.RUNNING, attempt=attempt) is None:
            return
        _release_database_connection()
        try:
            ctx = ToolContext(provider=get_provider(), emit=publisher.text, check=run.check, config=run.config,
                              execution_id=execution_id)
            if implementation is None:
                raise PermanentToolError(f"{execution.tool.name} has no implementation.", code="not_implemented")
            result = implementation(execution.parameters, ctx)
        except ExecutionStopped:
            return
        except TransientToolError as exc:
            logger.info("Execution %s attempt %d: %s", execution_id, attempt, exc.code)
            if publisher.ended:
                return
            reason, message, retry_after = exc.code, exc.message, exc.retry_after
            continue
        except RedisError:
            # The event log is unreachable: nothing can be published. Wait for it
            # (within the time limit), then start the attempt again, announced.
            logger.warning("Execution %s attempt %d: event store unavailable", execution_id, attempt, exc_info=True)
            if not run.wait_for_event_store():
                raise
            reason, message, retry_after = ("event_store_unavailable",
                                            "The event store (Redis) was unreachable.", 0)
            continue
        except SoftTimeLimitExceeded:
            run.fail(ExecutionTimeout(), attempt)
            return
        except ToolError as exc:
            run.fail(exc, attempt)
            return
        except Exception as exc:
            logger.exception("Execution %s failed unexpectedly", execution_id)
            run.fail(exc, attempt)
            return
        run.complete(result, ctx, attempt, use_cache)
        return
