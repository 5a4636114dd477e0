"""What a run and the liveness loops need from the engine that holds them (so neither imports it)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from ..events import EventLog
from ..events.publisher import EventListener, ExecutionPublisher
from ..models import ToolExecution


class RunControl(Protocol):
    """A run as the control poll sees it."""

    attempt: int
    publisher: ExecutionPublisher
    task: asyncio.Task | None

    def stop(self, reason: str) -> None: ...


class Host(Protocol):
    worker_id: str
    log: EventLog
    config: dict[str, Any]
    runs: dict[str, RunControl]
    heartbeat: Any  # liveness.Heartbeat (liveness imports this module)

    def db(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Awaitable[Any]: ...

    def publisher(
        self,
        execution: ToolExecution,
        *,
        attempt: int,
        epoch: str | None = None,
        listener: EventListener | None = None,
        on_signal: Callable[[], None] | None = None,
    ) -> ExecutionPublisher: ...

    def free_slots(self) -> int: ...
