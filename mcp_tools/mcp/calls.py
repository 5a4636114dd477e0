"""One ``tools/call``: gather input, start (or re-attach to) the execution, stream it, answer.

    tools/call ─▶ tool the caller may use? ─▶ prelude (interactive.py): ask the client first?
              ─▶ services.execution_start(idempotency_key=_meta key)   a repeated key: the same execution
              ─▶ a client that takes tasks: CreateTaskResult (tasks.py), done
              ─▶ else follow the execution: progress notifications, then the result (results.py)

**Re-attaching.** The 2026-07-28 protocol resumes nothing: a client whose
connection broke sends its request again. With the same idempotency key
(``_meta["mcp-tools/idempotencyKey"]``, any string of 1-200 characters, kept
``MCP_IDEMPOTENCY_WINDOW_S``) the repeated call attaches to the execution the
first one started, running or finished, instead of starting (and paying for)
another: its first progress notification carries the whole text so far,
then the call continues live from there. A call with a key is not cancelled
when its connection closes — the client said it may come back; cancel it
with ``tasks/cancel`` (its task id is the execution id), the REST API or the
WebSocket.

**Progress.** ``progress`` counts the text pieces so far (always rising);
``message`` is the whole text streamed so far (after a ``retrying`` event,
the text of the new attempt).
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
import mcp_types as types
from channels.db import database_sync_to_async
from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel

from mcp_tools import delivery, metrics, services
from mcp_tools.errors import ServiceError
from mcp_tools.events import Event

from . import catalog, results, tasks
from .follow import follow_execution
from .interactive import PRELUDES, InputRequired, Round

logger = logging.getLogger(__name__)

IDEMPOTENCY_META_KEY = "mcp-tools/idempotencyKey"


def idempotency_key(params: types.CallToolRequestParams) -> str | None:
    key = (params.meta or {}).get(IDEMPOTENCY_META_KEY)
    return key if isinstance(key, str) else None


def wire_responses(responses: Any) -> dict[str, Any]:
    """``inputResponses`` as the client sent them (the SDK parses each into its result model)."""
    if responses is None:
        return {}
    if not isinstance(responses, dict):
        raise MCPError(code=types.INVALID_PARAMS, message="inputResponses must be an object")
    return {
        key: value.model_dump(by_alias=True, mode="json", exclude_none=True) if isinstance(value, BaseModel) else value
        for key, value in responses.items()
    }


class ToolCall:
    """One ``tools/call`` by ``user`` (``scopes``: the OAuth scopes of its token, None without OAuth)."""

    def __init__(self, ctx: ServerRequestContext, *, user: Any, scopes: frozenset[str] | None) -> None:
        self.ctx = ctx
        self.user = user
        self.scopes = scopes
        self.deltas = 0
        self.text: list[str] = []

    async def run(self, params: types.CallToolRequestParams) -> types.CallToolResult | types.InputRequiredResult | dict:
        try:
            tool = await catalog.usable_tool(self.user, self.scopes, params.name)
        except ServiceError as exc:
            return results.service_error_result(exc)
        parameters = params.arguments or {}
        prelude = PRELUDES.get(tool.name)
        if prelude is not None:
            gathered = await database_sync_to_async(prelude)(self.round(params))
            if isinstance(gathered, InputRequired):
                return gathered.as_result()
            parameters = gathered
        as_task = tasks.runs_as_task(self.ctx, tool)
        key = idempotency_key(params)
        try:
            # Shielded: a cancel arriving meanwhile is raised just after, with the id known.
            with anyio.CancelScope(shield=True):
                execution = await database_sync_to_async(services.execution_start)(
                    user=self.user, tool_name=tool.name, parameters=parameters, idempotency_key=key
                )
        except ServiceError as exc:
            return results.service_error_result(exc)
        execution_id = str(execution.pk)
        logger.info(
            "MCP tools/call %s by %s: execution %s%s", tool.name, self.user, execution_id, " (task)" if as_task else ""
        )
        if as_task:
            return await tasks.created(execution)
        try:
            terminal = await self.follow(execution_id)
        except anyio.get_cancelled_exc_class():
            if key is None:
                with anyio.CancelScope(shield=True):
                    await self.cancel(execution_id)
            raise
        return results.terminal_result(terminal, output_field=tool.output_field)

    def round(self, params: types.CallToolRequestParams) -> Round:
        return Round(
            arguments=params.arguments or {},
            responses=wire_responses(params.input_responses),
            state=params.request_state,
            capabilities=self.ctx.session.client_capabilities,
        )

    async def follow(self, execution_id: str) -> Event:
        """Everything so far in one progress notification (a re-attach), then live."""
        snapshot = await delivery.read_events(execution_id)
        for event in snapshot.events:
            self.take(event)
        last_seq = snapshot.events[-1]["seq"] if snapshot.events else 0
        if self.deltas:
            await self.report()
        return await follow_execution(execution_id, on_event=self.on_event, after_seq=last_seq)

    def take(self, event: Event) -> bool:
        if event["type"] == "execution.reset" or (
            event["type"] == "execution.status" and event.get("status") == "retrying"
        ):
            self.text = []  # docs/protocol.md: the output starts again
        elif event["type"] == "execution.delta":
            self.deltas += 1
            self.text.append(event["text"])
            metrics.events_relayed("mcp", [event])
            return True
        return False

    async def on_event(self, event: Event) -> None:
        if self.take(event):
            await self.report()

    async def report(self) -> None:
        await self.ctx.session.report_progress(self.deltas, None, "".join(self.text))

    async def cancel(self, execution_id: str) -> None:
        logger.info("MCP call for execution %s was cancelled; cancelling the execution", execution_id)
        try:
            await database_sync_to_async(services.execution_cancel)(user=self.user, execution_id=execution_id)
        except Exception:
            logger.exception("Could not cancel execution %s", execution_id)
