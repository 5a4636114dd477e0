"""The article's viewsets (step 5), running every execution through the service path.

``ToolViewSet`` lists active tools and runs them; ``ToolExecutionViewSet``
shows the caller's own executions. Neither builds a ``ToolExecution``:
``services.execution_start`` validates, records, publishes and runs, exactly
as for a WebSocket ``execute``::

    POST /api/tools/generate_report/execute/   {"parameters": {"data": {"a": 1}}}
    -> 200 {"id": ..., "status": "completed", "result": {...}, ...}

Service errors become HTTP answers in ``exceptions.py`` only.
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status as http_status
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from mcp_tools import delivery, jsonguard, selectors, services
from mcp_tools.errors import NotFound
from mcp_tools.models import Tool, ToolExecution

from .exceptions import execution_error_response
from .filters import ToolExecutionFilter
from .serializers import (
    ErrorSerializer,
    ExecutionAcceptedSerializer,
    ExecutionErrorSerializer,
    ExecutionStatusSerializer,
    ToolExecuteRequestSerializer,
    ToolExecutionSerializer,
    ToolSerializer,
)

logger = logging.getLogger(__name__)

EXECUTION_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The execution's id.")
TOOL_ID = OpenApiParameter(
    "id",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="The tool's numeric id, or its name (e.g. generate_report).",
)
ERRORS = {
    400: OpenApiResponse(
        ErrorSerializer, description="invalid_parameters (details: the JSON Schema problems) or invalid_request"
    ),
    404: OpenApiResponse(ErrorSerializer, description="No active tool with that id or name."),
    429: OpenApiResponse(ErrorSerializer, description="rate_limited; see the Retry-After header."),
}


@extend_schema_view(
    list=extend_schema(summary="Active tools, with usage stats"),
    retrieve=extend_schema(summary="One tool, with usage stats", parameters=[TOOL_ID]),
)
class ToolViewSet(viewsets.ReadOnlyModelViewSet):
    """MCP tools: list, inspect, run."""

    serializer_class = ToolSerializer
    permission_classes = [IsAuthenticated]

    def get_queryset(self) -> QuerySet[Tool]:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no user
            return Tool.objects.none()
        visible = [tool.pk for tool in selectors.tools_visible_to(self.request.user)]
        return selectors.tools_active().filter(pk__in=visible).select_related("stats")

    def get_object(self) -> Tool:
        """By id or, for friendlier URLs, by name; inactive tools, and tools the user may not use, are 404."""
        value = str(self.kwargs[self.lookup_url_kwarg or self.lookup_field])
        field = "pk" if value.isdigit() else "name"
        tool = get_object_or_404(self.get_queryset(), **{field: value})
        self.check_object_permissions(self.request, tool)
        return tool

    @extend_schema(
        summary="Run a tool and wait for its result",
        parameters=[TOOL_ID],
        request=ToolExecuteRequestSerializer,
        responses={
            200: ToolExecutionSerializer,
            202: OpenApiResponse(ExecutionAcceptedSerializer, description="With async_execution: queued."),
            **ERRORS,
            409: OpenApiResponse(ExecutionErrorSerializer, description="Cancelled before it completed."),
            500: OpenApiResponse(ExecutionErrorSerializer, description="The tool broke on our side (internal_error)."),
            502: OpenApiResponse(
                ExecutionErrorSerializer,
                description="The tool failed; error.code says how (llm_error, fetch_failed, ...).",
            ),
            504: OpenApiResponse(ExecutionErrorSerializer, description="The tool ran past its time limit."),
        },
    )
    @action(detail=True, methods=["post"])
    def execute(self, request: Request, pk: str | None = None) -> Response:
        """Execute a tool and wait for its result (a worker runs it; this request follows it to its end)."""
        tool = self.get_object()
        options = self._execute_options(request)
        if options["async_execution"]:
            return self._enqueue(request, tool, options)
        execution = self._start(request, tool, options)
        async_to_sync(delivery.wait_for_end)(str(execution.pk))
        execution.refresh_from_db()
        data = ToolExecutionSerializer(execution).data
        if execution.status != ToolExecution.Status.COMPLETED:
            return execution_error_response(execution, data)
        return Response(data, status=http_status.HTTP_200_OK)

    @extend_schema(
        summary="Queue a tool run",
        parameters=[TOOL_ID],
        request=ToolExecuteRequestSerializer,
        responses={202: ExecutionAcceptedSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"])
    def execute_async(self, request: Request, pk: str | None = None) -> Response:
        """Execute a tool asynchronously (a Celery worker runs it)."""
        tool = self.get_object()
        return self._enqueue(request, tool, self._execute_options(request))

    def _execute_options(self, request: Request) -> dict[str, Any]:
        serializer = ToolExecuteRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def _start(self, request: Request, tool: Tool, options: dict[str, Any]) -> ToolExecution:
        start = services.execution_start if options["use_cache"] else services.execution_start_uncached
        return start(
            user=request.user,
            tool_name=tool.name,
            parameters=options["parameters"],
            idempotency_key=request.headers.get("Idempotency-Key"),
        )

    def _enqueue(self, request: Request, tool: Tool, options: dict[str, Any]) -> Response:
        execution = self._start(request, tool, options)
        return Response(
            {"execution_id": str(execution.pk), "task_id": execution.celery_task_id},
            status=http_status.HTTP_202_ACCEPTED,
        )


class ExecutionPagination(PageNumberPagination):
    """``?page=N``, and ``?page_size=N`` (up to 500) for scripts that want fewer round trips."""

    page_size_query_param = "page_size"
    max_page_size = 500


def own_execution(*, user, execution_id: Any) -> ToolExecution:
    """The caller's own execution, or NotFound (for staff too: the REST API is per user)."""
    execution = selectors.execution_get_visible(user=user, execution_id=execution_id)
    if execution.user_id != user.pk:
        raise NotFound()
    return execution


@extend_schema_view(
    list=extend_schema(summary="Your executions, newest first"),
    retrieve=extend_schema(summary="One of your executions", parameters=[EXECUTION_ID]),
)
class ToolExecutionViewSet(viewsets.ReadOnlyModelViewSet):
    """The caller's own executions; anyone else's id answers 404, as an unknown one does."""

    serializer_class = ToolExecutionSerializer
    permission_classes = [IsAuthenticated]
    filterset_class = ToolExecutionFilter
    pagination_class = ExecutionPagination

    def get_queryset(self) -> QuerySet[ToolExecution]:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no user
            return ToolExecution.objects.none()
        # Staff see everyone's executions in the admin and the monitor; here, as in the article, only their own.
        return selectors.executions_visible_to(self.request.user).filter(user=self.request.user)

    def get_object(self) -> ToolExecution:
        return own_execution(user=self.request.user, execution_id=self.kwargs["pk"])

    @extend_schema(
        summary="Status, result and error of one execution",
        parameters=[EXECUTION_ID],
        responses={200: ExecutionStatusSerializer, 404: ErrorSerializer},
    )
    @action(detail=True, methods=["get"])
    def status(self, request: Request, pk: str | None = None) -> Response:
        """Get execution status."""
        execution = self.get_object()
        return Response(
            {
                "id": str(execution.id),
                "status": execution.status,
                "result": jsonguard.displayable(execution.result),
                "error": jsonguard.displayable_text(execution.error),
            }
        )

    @extend_schema(
        summary="Cancel one of your executions",
        parameters=[EXECUTION_ID],
        request=None,
        responses={202: ExecutionStatusSerializer, 404: ErrorSerializer},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        """Cancel an execution: a queued one ends at once, a running one within MCP_CONTROL_POLL_S
        (follow it to its ``execution.cancelled``); one that has ended is left as it is."""
        execution = services.execution_cancel(user=request.user, execution_id=self.get_object().pk)
        return Response(
            {
                "id": str(execution.id),
                "status": execution.status,
                "result": jsonguard.displayable(execution.result),
                "error": jsonguard.displayable_text(execution.error),
            },
            status=http_status.HTTP_202_ACCEPTED,
        )
