"""Running executions on the engine's event loop: the Celery task, then attempts, retries, time limit,
cancel, the end.

A Celery message is a token (``execute_tool_async``): it lets this worker
claim the next execution by fair share (``claims.py``) and run it here::

    claimed ─▶ running(n) ─▶ deltas … ─▶ completed
                 │ transient error ─▶ retrying(n+1, reason) ─▶ backoff ─▶ running(n+1) ─▶ deltas from scratch …
                 │ permanent error, timeout, retries used up ─▶ failed
                 │ cancel asked ─▶ cancelled (ended here, with the tokens the provider reported)
                 │ live log lost ─▶ new epoch: pending, retrying(n+1, event_log_lost), running(n+1) …
                 └ ended elsewhere, or given up (a newer attempt runs elsewhere) ─▶ stop, write nothing

A run is one asyncio task. The tool runs inside it; ``stop(reason)`` (a
cancel, from the log's answers or the engine's control poll) cancels the
task, and the run ends the way the reason says. Nothing is marked failed
before a retry, and the database sees a constant number of writes per
attempt whatever the number of tokens. The end is one call
(``mcp_tools/outcomes.py``): the terminal event is logged, the row and the
statistics are derived from it in one transaction, then it is sent.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any

from celery import shared_task
from django.conf import settings
from django.utils import timezone
from redis.exceptions import RedisError

from .. import metrics, outcomes
from ..errors import ExecutionStopped, ExecutionTimeout, PermanentToolError, ToolError, TransientToolError
from ..events import Event, cancelled_event, completed_event, failed_event, new_epoch, status_event
from ..events.publisher import EventListener, LogLost
from ..models import ToolExecution
from ..providers import Usage, get_provider
from ..results_cache import result_cache_store
from ..tools.api import ToolSpec
from ..tools.context import ToolContext
from ..tools.registry import tool_spec
from . import claims, liveness
from .host import Host
from .loop import get_engine
from .pool import defer_until_done
from .stopping import Stoppable

logger = logging.getLogger(__name__)

# How often a run whose event log became unreachable looks whether it is back.
EVENT_STORE_POLL_S = 0.5


@shared_task(name="mcp_tools.execute_tool_async", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def execute_tool_async(execution_id: str, **_: object) -> None:
    """A token: run the next queued execution by fair share (usually ``execution_id``). The message is
    acknowledged when that execution has ended (late acks), so a worker that dies before is not forgotten."""
    engine = get_engine()
    defer_until_done(engine.submit(run_next(engine)))


async def run_next(engine: Host) -> None:
    execution = await engine.db(claims.claim_next, worker=engine.worker_id)
    if execution is not None:
        await run(engine, execution)


def run_here(execution_id: str, *, listener: EventListener | None = None) -> None:
    """Claim and run one given execution in this process, blocking (``manage.py run_tool``)."""
    engine = get_engine()

    async def claim_and_run() -> None:
        execution = await engine.db(claims.claim, execution_id, worker=engine.worker_id)
        if execution is not None:
            await run(engine, execution, listener=listener)

    engine.submit(claim_and_run()).result()


async def run(engine: Host, execution: ToolExecution, *, listener: EventListener | None = None) -> None:
    job = Run(execution, engine=engine, listener=listener)
    engine.runs[job.execution_id] = job
    try:
        await job.run()
    except Exception:  # a defect, not a tool's failure: the row must not stay running for ever
        logger.exception("Execution %s broke in the engine; handled as a lost worker's", job.execution_id)
        await engine.db(liveness.reap_one, job.execution_id)
    finally:
        engine.runs.pop(job.execution_id, None)


class Run(Stoppable):
    def __init__(self, execution: ToolExecution, *, engine: Host, listener: EventListener | None = None) -> None:
        super().__init__()
        self.execution = execution
        self.execution_id = str(execution.pk)
        self.engine = engine
        self.config = settings.MCP_CONFIG
        self.attempt = execution.attempt
        self.deadline = time.monotonic() + execution.tool.timeout
        self.spent = Usage()  # over every attempt: billed even when an attempt failed
        self.publisher = engine.publisher(execution, attempt=self.attempt, listener=listener, on_signal=self._on_signal)

    # --- The run.

    async def run(self) -> None:
        self.task = asyncio.current_task()
        try:
            await self._attempts()
        except ExecutionStopped:
            self._absorb_stop()
            if self.stop_reason == "cancel":
                await self._end(
                    cancelled_event(duration_ms=self._duration_ms(), attempt=self.attempt, **_usage(self.spent))
                )
        finally:
            self.publisher.close()

    async def _attempts(self) -> None:
        spec = tool_spec(self.execution.tool.name)
        if spec is None:
            await self.publisher.publish(status_event("running", attempt=self.attempt))
            return await self._fail(
                PermanentToolError(f"{self.execution.tool.name} is not defined on this worker.", code="not_implemented")
            )
        retry: tuple[str, str, float | None] | None = None
        while True:
            try:
                result = await self._step(self._attempt(spec, retry))
            except TransientToolError as exc:
                logger.info("Execution %s attempt %d: %s", self.execution_id, self.attempt, exc.code)
                retry = (exc.code, exc.message, exc.retry_after)
                continue
            except LogLost:
                self._absorb_stop()
                with self.replacing_log():  # a cancel still interrupts it; a "lost" is about the old log
                    await self._step(self._new_epoch())
                retry = ("event_log_lost", "The live event log was lost.", 0)
                continue
            except RedisError:
                logger.warning("Execution %s: event store unavailable", self.execution_id, exc_info=True)
                if not await self._step(self._wait_for_event_store()):
                    return await self._fail(ExecutionTimeout())
                retry = ("event_store_unavailable", "The event store (Redis) was unreachable.", 0)
                continue
            except TimeoutError:
                return await self._fail(
                    ExecutionTimeout(f"{self.execution.tool.name} ran past its {self.execution.tool.timeout}s limit.")
                )
            except (ToolError, ExecutionStopped):
                raise
            except Exception as exc:
                logger.exception("Execution %s failed unexpectedly", self.execution_id)
                return await self._fail(exc)
            if result is not None:
                await self._complete(spec, result)
            return

    async def _attempt(self, spec: ToolSpec, retry: tuple[str, str, float | None] | None) -> dict[str, Any] | None:
        """One attempt: announce it, run the tool. None when it ended on the way (a failure was recorded)."""
        if retry is not None:
            reason, message, retry_after = retry
            if self.attempt >= self.config["MAX_RETRIES"] + 1:
                await self._fail(ToolError(message, code=reason))
                return None
            self.attempt += 1
            self.publisher.attempt = self.attempt
            await self.publisher.publish(status_event("retrying", attempt=self.attempt, reason=reason, message=message))
            await self.engine.db(
                claims.set_status,
                self.execution_id,
                worker=self.engine.worker_id,
                status="retrying",
                attempt=self.attempt,
            )
            await self._backoff(retry_after)
            await self.engine.db(
                claims.set_status,
                self.execution_id,
                worker=self.engine.worker_id,
                status="running",
                attempt=self.attempt,
            )
        await self.publisher.publish(status_event("running", attempt=self.attempt))
        try:
            return await self._call(spec)
        except ToolError as exc:
            if isinstance(exc, TransientToolError):
                raise
            await self._fail(exc)
            return None

    async def _call(self, spec: ToolSpec) -> dict[str, Any]:
        self.context = ToolContext(
            execution_id=self.execution_id,
            attempt=self.attempt,
            user=self.execution.user,
            provider=get_provider(),
            send_text=metrics.first_text_timer(self.execution, self.publisher.text),
            output_limit_bytes=self.config["MAX_OUTPUT_BYTES"],
            output_field=spec.output_field,
        )
        try:
            async with asyncio.timeout(self.deadline - time.monotonic()):
                result = await spec.call(self.context, self.execution.parameters)
        finally:
            self.spent.add(self.context.usage)
        self.context.check()
        return {**result, spec.output_field: self.context.text}

    # --- Endings.

    async def _complete(self, spec: ToolSpec, result: dict[str, Any]) -> None:
        event = completed_event(
            result, duration_ms=self._duration_ms(), cached=False, attempt=self.attempt, **_usage(self.spent)
        )
        entry = (self.execution.tool.name, self.execution.parameters, result, result[spec.output_field])
        await self._end(event, cache=entry if spec.cacheable else None)

    async def _fail(self, error: BaseException) -> None:
        code = getattr(error, "code", "internal_error")
        message = getattr(error, "message", None) or "The tool failed unexpectedly."
        await self._end(
            failed_event(
                code,
                message,
                duration_ms=self._duration_ms(),
                attempt=self.attempt,
                result=getattr(error, "result", None),
                **_usage(self.spent),
            )
        )

    async def _end(self, event: Event, *, cache: tuple[str, dict, dict, str] | None = None) -> bool:
        """The one ending: log the terminal event, write row and stats from it, send it. Not interruptible.
        A completed result to ``cache`` is stored first: whoever hears "completed" finds it cached."""
        self.ending = True
        self._absorb_stop()

        async def record(numbered: Event) -> None:
            if cache is not None:
                await self.engine.db(result_cache_store, *cache)
            snapshot = await self.engine.log.aread(self.execution_id)
            await self.engine.db(
                outcomes.record_end,
                execution_id=self.execution_id,
                tool_id=self.execution.tool_id,
                event=numbered,
                events=snapshot.events,
            )
            await self.engine.log.aexpire(self.execution_id, settings.EVENT_LOG_TTL_S)

        return await asyncio.shield(self.publisher.finish(event, on_claimed=record))

    # --- Waiting.

    async def _backoff(self, retry_after: float | None) -> None:
        """Exponential backoff with full jitter; ``retry-after`` wins when given. A cancel cuts it short."""
        cap = self.config["RETRY_BACKOFF_MAX_S"]
        if retry_after is not None:
            delay = min(retry_after, cap)
        else:
            delay = random.uniform(0, min(cap, self.config["RETRY_BACKOFF_S"] * 2 ** (self.attempt - 2)))
        await asyncio.sleep(delay)

    async def _wait_for_event_store(self) -> bool:
        """Poll the event log until it answers; False once the time limit is reached."""
        while time.monotonic() < self.deadline:
            if await self.engine.db(self.engine.log.available):
                return True
            await asyncio.sleep(EVENT_STORE_POLL_S)
        return False

    async def _new_epoch(self) -> None:
        """The live log is gone: start it again under a new epoch, from ``pending``, as followers expect."""
        epoch = new_epoch()
        logger.warning("Execution %s: the live event log was lost; starting epoch %s", self.execution_id, epoch)
        await self.engine.db(claims.set_epoch, self.execution_id, epoch=epoch)
        listener = self.publisher.listener
        self.publisher.close()
        self.publisher = self.engine.publisher(
            self.execution, attempt=self.attempt, epoch=epoch, listener=listener, on_signal=self._on_signal
        )
        await self.publisher.create(status_event("pending"))

    def _duration_ms(self) -> int:
        started = self.execution.started_at or self.execution.created_at
        return int((timezone.now() - started).total_seconds() * 1000)


def _usage(spent: Usage) -> dict[str, int]:
    return {"input_tokens": spent.input_tokens, "output_tokens": spent.output_tokens}
