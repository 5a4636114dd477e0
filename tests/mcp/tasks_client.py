"""The Tasks extension (SEP-2663) for the official Python SDK's ``Client``, through its extension hook.

The SDK does not implement Tasks; its ``ClientExtension`` lets a client
declare ``io.modelcontextprotocol/tasks`` and claim the ``resultType: "task"``
shape of ``tools/call``. With ``TasksClient`` in ``Client(extensions=[...])``
a ``call_tool`` that the server turned into a task is polled with
``tasks/get`` until it ends, and answers the final ``CallToolResult`` — the
transparent mode SEP-2663 describes for existing ``call_tool`` callers::

    tasks = TasksClient()
    async with Client(transport, extensions=[tasks]) as client:
        result = await client.call_tool("generate_report", {"data": {...}})   # polled behind the scenes
        tasks.created[0].task_id                                              # the task it went through

``get``/``cancel``/``update`` send the three methods by hand (``Mcp-Name`` is
the task id, as SEP-2663 asks).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import anyio
import mcp_types as types
from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim
from mcp.client.session import ClientSession
from pydantic import ConfigDict

EXTENSION_ID = "io.modelcontextprotocol/tasks"
TERMINAL = {"completed", "failed", "cancelled"}


class CreateTaskResult(types.Result):
    model_config = ConfigDict(extra="allow")
    result_type: Literal["task"] = "task"
    task_id: str
    status: str
    created_at: str
    last_updated_at: str
    ttl_ms: int | None = None
    poll_interval_ms: int | None = None
    status_message: str | None = None


class TaskIdParams(types.RequestParams):
    task_id: str


class UpdateTaskParams(TaskIdParams):
    input_responses: dict[str, Any]


class _TaskRequest(types.Request[TaskIdParams, str]):
    name_param: ClassVar[str] = "taskId"
    params: TaskIdParams


class GetTask(_TaskRequest):
    method: Literal["tasks/get"] = "tasks/get"


class CancelTask(_TaskRequest):
    method: Literal["tasks/cancel"] = "tasks/cancel"


class UpdateTask(types.Request[UpdateTaskParams, str]):
    name_param: ClassVar[str] = "taskId"
    method: Literal["tasks/update"] = "tasks/update"
    params: UpdateTaskParams


class TaskState(types.Result):
    """A DetailedTask as ``tasks/get`` answers it (wire keys kept)."""

    model_config = ConfigDict(extra="allow")
    task_id: str
    status: str
    status_message: str | None = None
    ttl_ms: int | None = None
    poll_interval_ms: int | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    input_requests: dict[str, Any] | None = None


async def get(session: ClientSession, task_id: str) -> TaskState:
    return await session.send_request(GetTask(params=TaskIdParams(task_id=task_id)), TaskState)


async def cancel(session: ClientSession, task_id: str) -> None:
    await session.send_request(CancelTask(params=TaskIdParams(task_id=task_id)), types.EmptyResult)


async def update(session: ClientSession, task_id: str, responses: dict[str, Any]) -> None:
    await session.send_request(
        UpdateTask(params=UpdateTaskParams(task_id=task_id, input_responses=responses)), types.EmptyResult
    )


class TasksClient(ClientExtension):
    """Declares the extension; resolves a task into its final result by polling at the server's interval."""

    identifier = EXTENSION_ID

    def __init__(self) -> None:
        self.created: list[CreateTaskResult] = []
        self.polls: list[TaskState] = []

    def claims(self) -> list[ResultClaim[Any]]:
        return [ResultClaim(result_type="task", model=CreateTaskResult, resolve=self.resolve)]

    async def resolve(self, created: CreateTaskResult, ctx: ClaimContext) -> types.CallToolResult:
        self.created.append(created)
        while True:
            state = await get(ctx.session, created.task_id)
            self.polls.append(state)
            if state.status == "completed":
                return types.CallToolResult.model_validate(state.result, by_name=False)
            if state.status in TERMINAL:
                raise TaskEnded(state)
            await anyio.sleep((state.poll_interval_ms or 1000) / 1000)


class TaskEnded(Exception):
    """The task ended without a result (failed or cancelled)."""

    def __init__(self, state: TaskState) -> None:
        super().__init__(f"task {state.task_id} ended {state.status}")
        self.state = state
