"""How a run is stopped from outside while it waits: the one place asyncio cancellation is turned into meaning.

``stop(reason)`` cancels the run's task; wherever the run was waiting
(``_step``), the cancellation is taken back and raised as what the reason
means: ``ExecutionStopped`` (``cancel``: end it cancelled; ``ended`` or
``stale``: stop quietly, someone else ended it or runs it now) or
``LogLost`` (start a new epoch). A cancellation the run did not ask for
(the engine shutting down) goes through untouched. Once the run is ending,
nothing interrupts it::

    run.stop("cancel")       # from the control poll, or the log's answer to an append
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Iterator
from typing import TypeVar

from ..errors import ExecutionStopped
from ..events.publisher import ExecutionPublisher, LogLost
from ..tools.context import ToolContext

T = TypeVar("T")


class Stoppable:
    execution_id: str
    publisher: ExecutionPublisher

    def __init__(self) -> None:
        self.stop_reason: str | None = None
        self._cancel_pending = False  # ``stop`` cancelled the task and nobody has taken that back yet
        self.ending = False
        self.restarting_log = False  # a new epoch is being started: a "lost" stop is about the old one
        self.context: ToolContext | None = None
        self.task: asyncio.Task | None = None

    def stop(self, reason: str) -> None:
        """Stop the run now: ``cancel`` (end it cancelled), ``ended``/``stale`` (quietly), ``lost`` (new epoch).

        Once the run is ending (its terminal event is on its way) nothing interrupts it."""
        if self.stop_reason is not None or self.ending:
            return
        if reason == "lost" and self.restarting_log:
            return  # the control poll saw the old log gone while the new one is being started
        self.stop_reason = reason
        if self.context is not None:
            self.context.stop(reason)
        if self.task is not None and self.task is not asyncio.current_task():
            self._cancel_pending = self.task.cancel()

    def _on_signal(self) -> None:
        """The log's answer says stop (a lost log is raised by the publisher's next write instead)."""
        publisher = self.publisher
        reason = (
            "stale"
            if publisher.stale
            else "ended"
            if publisher.ended
            else "cancel"
            if publisher.cancel_requested
            else None
        )
        if reason is not None:
            self.stop(reason)

    @contextlib.contextmanager
    def replacing_log(self) -> Iterator[None]:
        """While a new epoch is started, a "lost" stop (the control poll saw the old log gone) is ignored."""
        self.restarting_log = True
        try:
            yield
        finally:
            self.restarting_log = False

    def _absorb_stop(self) -> None:
        """A stop was handled where it was raised: take back the cancel ``stop`` put on the task."""
        if self.stop_reason == "lost":
            self.stop_reason = None
        if self._cancel_pending and self.task is not None:
            self._cancel_pending = False
            self.task.uncancel()

    async def _step(self, awaitable: Awaitable[T]) -> T:
        """Await ``awaitable``; a ``stop`` arriving meanwhile is raised as what it means."""
        try:
            return await awaitable
        except asyncio.CancelledError:
            if not self._cancel_pending or self.task is None or self.task.cancelling() > 1:
                raise  # the engine is shutting down: the run is abandoned and will run again elsewhere
            self._cancel_pending = False
            self.task.uncancel()
            reason = self.stop_reason
            if reason == "lost":
                self.stop_reason = None
                raise LogLost(self.execution_id) from None
            raise ExecutionStopped(reason) from None
