"""Request bodies: DRF's parsers with a size limit and the service's JSON check.

DRF reads the body itself, so Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE`` never
applies to it: a 3 MiB body was parsed whole (and failed with a 500). These
parsers read at most that many bytes and answer 413 beyond it; JSON bodies
then go through ``mcp_tools/jsonguard.py``, the check WebSocket frames and
MCP requests get too, so lone surrogates, ``1e999``, NaN and deep nesting
are a 400 ``invalid_json`` before anything is stored::

    REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"] = [
        "mcp_tools.api.parsers.GuardedJSONParser",
        "mcp_tools.api.parsers.LimitedFormParser",
        "rest_framework.parsers.MultiPartParser",   # Django's own parser applies the limit
    ]
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import QueryDict
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import FormParser, JSONParser

from mcp_tools import jsonguard


class RequestTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"
    default_detail = "The request body is too large."


class InvalidJsonBody(ParseError):
    default_code = "invalid_json"
    default_detail = "The request body is not valid JSON."


def read_limited(stream, parser_context: dict | None) -> bytes:
    """The whole body, or RequestTooLarge once it passes ``DATA_UPLOAD_MAX_MEMORY_SIZE``."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    request = (parser_context or {}).get("request")
    declared = request.META.get("CONTENT_LENGTH") if request is not None else None
    if limit is not None and declared and declared.isdigit() and int(declared) > limit:
        raise RequestTooLarge(f"The body is {declared} bytes; the limit is {limit}.")
    body = stream.read() if limit is None else stream.read(limit + 1)
    if limit is not None and len(body) > limit:
        raise RequestTooLarge(f"The body is over the limit of {limit} bytes.")
    return body


class GuardedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        body = read_limited(stream, parser_context)
        try:
            return jsonguard.loads(body)
        except jsonguard.JsonRefused as exc:
            raise InvalidJsonBody(exc.message) from None


class LimitedFormParser(FormParser):
    def parse(self, stream, media_type=None, parser_context=None) -> QueryDict:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        return QueryDict(read_limited(stream, parser_context), encoding=encoding)
