"""How the REST API says what went wrong: one envelope, translated in one place.

Every error answer has the same body, whatever raised it::

    {"error": {"code": "invalid_parameters", "message": "...", "details": [...]}}

``code`` is the WebSocket protocol's error code for service errors
(``invalid_parameters``, ``unknown_tool``, ``not_found``, ``rate_limited``
...) and DRF's own code for DRF's errors (``not_authenticated``,
``permission_denied``, ``method_not_allowed``; a request body that fails the
serializer is ``invalid_request`` with the field errors as ``details``; a
body that is not JSON this service accepts is ``invalid_json``, one over
``DATA_UPLOAD_MAX_MEMORY_SIZE`` a 413 ``request_too_large``: ``parsers.py``).

``exception_handler`` is registered as ``REST_FRAMEWORK["EXCEPTION_HANDLER"]``;
the event stream view, which is a plain async Django view, uses
``service_error_parts`` from here as well. A synchronous ``execute`` whose
execution ended badly is answered by ``execution_error_response``: the error
plus the recorded execution, with the status codes listed there.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions as drf_exceptions
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from mcp_tools.errors import (
    IdempotencyConflict,
    InvalidMessage,
    InvalidParameters,
    NotFound,
    RateLimited,
    ServiceError,
    ToolError,
    UnknownTool,
)
from mcp_tools.models import ToolExecution

from .parsers import RequestTooLarge

logger = logging.getLogger(__name__)

# First match wins, so subclasses come before their parents.
SERVICE_ERROR_STATUS: tuple[tuple[type[ServiceError], int], ...] = (
    (InvalidParameters, status.HTTP_400_BAD_REQUEST),
    (InvalidMessage, status.HTTP_400_BAD_REQUEST),
    (UnknownTool, status.HTTP_404_NOT_FOUND),
    (NotFound, status.HTTP_404_NOT_FOUND),
    (RateLimited, status.HTTP_429_TOO_MANY_REQUESTS),
    (IdempotencyConflict, status.HTTP_409_CONFLICT),
    (ToolError, status.HTTP_502_BAD_GATEWAY),
)

# A synchronous execute that did not complete: the tool ran and failed (502,
# like a proxy whose upstream failed), ran out of time (504), broke on our
# side (500), or was cancelled meanwhile from elsewhere (409).
FAILED_EXECUTION_STATUS: dict[str, int] = {
    "timeout": status.HTTP_504_GATEWAY_TIMEOUT,
    "internal_error": status.HTTP_500_INTERNAL_SERVER_ERROR,
}


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return {"error": error}


def service_error_status(exc: ServiceError) -> int:
    for error_class, http_status in SERVICE_ERROR_STATUS:
        if isinstance(exc, error_class):
            return http_status
    return status.HTTP_500_INTERNAL_SERVER_ERROR


def service_error_parts(exc: ServiceError) -> tuple[int, dict[str, Any], dict[str, str]]:
    """The one translation of a ``ServiceError``: HTTP status, body, headers."""
    headers = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    return service_error_status(exc), {"error": exc.as_dict()}, headers


def service_error_response(exc: ServiceError) -> Response:
    http_status, body, headers = service_error_parts(exc)
    return Response(body, status=http_status, headers=headers)


def execution_error_response(execution: ToolExecution, data: dict[str, Any]) -> Response:
    """A synchronous execution that failed or was cancelled: what failed, and the record."""
    if execution.status == ToolExecution.Status.CANCELLED:
        code, message, http_status = "cancelled", "The execution was cancelled before it completed.", 409
    else:
        code = execution.error_code or "tool_error"
        message = execution.error or "The tool failed."
        http_status = FAILED_EXECUTION_STATUS.get(code, status.HTTP_502_BAD_GATEWAY)
    return Response({**error_body(code, message), "execution": data}, status=http_status)


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """``REST_FRAMEWORK["EXCEPTION_HANDLER"]``: every API error in the envelope above."""
    if isinstance(exc, ServiceError):
        return service_error_response(exc)
    if isinstance(exc, RequestDataTooBig):  # Django's multipart parser applies the same limit
        exc = RequestTooLarge(str(exc))
    response = drf_exception_handler(exc, context)
    if response is None:
        logger.exception("Unhandled error in %s", context.get("view").__class__.__name__)
        return Response(
            error_body("internal_error", "Something went wrong on our side."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    response.data = _envelope(exc, response.data)
    return response


def _envelope(exc: Exception, data: Any) -> dict[str, Any]:
    if isinstance(exc, drf_exceptions.ValidationError):
        return error_body("invalid_request", "The request is not valid; see details.", data)
    if isinstance(exc, Http404):
        return error_body("not_found", "Not found.")
    if isinstance(exc, PermissionDenied):
        return error_body("permission_denied", "You do not have permission to perform this action.")
    code = getattr(exc, "default_code", "error")
    message = str(exc.detail) if isinstance(exc, drf_exceptions.APIException) else str(exc)
    return error_body(code, message)
