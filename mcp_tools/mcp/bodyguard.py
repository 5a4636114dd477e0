"""``/mcp`` request bodies pass the service's JSON check before the SDK parses them.

The SDK parses with pydantic, which takes ``1e999`` and NaN as floats and a
body of any size; a lone surrogate or a number out of range would then reach
``execution_start`` and the database. ``JsonBodyGuard`` wraps the SDK's
endpoint (inside the token check, so only authenticated requests are read):
a POST body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` is a 413, one that
``mcp_tools/jsonguard.py`` refuses a 400 — both as JSON-RPC errors, the shape
the SDK itself answers a malformed request with::

    {"jsonrpc": "2.0", "id": null,
     "error": {"code": -32700, "message": "Parse error: ...", "data": {"code": "invalid_json"}}}

An accepted body is handed on unchanged; other methods (GET's event stream,
DELETE) pass untouched.
"""

from __future__ import annotations

import json

from django.conf import settings
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcp_tools import jsonguard

# JSON-RPC 2.0's codes.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600


class JsonBodyGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            return await self.app(scope, receive, send)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        declared = dict(scope.get("headers", [])).get(b"content-length", b"")
        if limit is not None and declared.isdigit() and int(declared) > limit:
            return await _error(
                send, 413, INVALID_REQUEST, f"Request too large: the limit is {limit} bytes.", "request_too_large"
            )
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if limit is not None and len(body) > limit:
                return await _error(
                    send, 413, INVALID_REQUEST, f"Request too large: the limit is {limit} bytes.", "request_too_large"
                )
            if not message.get("more_body", False):
                break
        try:
            jsonguard.loads(bytes(body))
        except jsonguard.JsonRefused as exc:
            return await _error(send, 400, PARSE_ERROR, f"Parse error: {exc.message}", "invalid_json")
        await self.app(scope, _replay(bytes(body), receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body as one message, then whatever the client sends next (its disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _error(send: Send, status: int, code: int, message: str, service_code: str) -> None:
    body = json.dumps(
        {"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message, "data": {"code": service_code}}}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
