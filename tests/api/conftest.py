"""REST API test helpers: clients per user, the real ASGI app over httpx, an SSE parser."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from rest_framework.test import APIClient

TERMINAL = {"execution.completed", "execution.failed", "execution.cancelled"}
REPORT_PARAMETERS = {"data": {"sales": [3, 5, 8], "region": "north"}}


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {user.auth_token.key}")
    return client


def token_headers(user) -> dict[str, str]:
    return {"Authorization": f"Token {user.auth_token.key}"}


@pytest.fixture
async def asgi_http() -> AsyncIterator[httpx.AsyncClient]:
    """httpx against ``config.asgi.application`` itself (which starts the embedded worker)."""
    from config.asgi import application

    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost", timeout=30) as client:
        yield client


def parse_sse(text: str) -> tuple[list[dict[str, Any]], list[str]]:
    """SSE text -> (events as {"id", "event", "data"}, comment lines)."""
    import json

    events, comments = [], []
    for block in text.split("\n\n"):
        fields: dict[str, Any] = {}
        for line in block.split("\n"):
            if line.startswith(":"):
                comments.append(line[1:].strip())
            elif line:
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
        if "data" in fields:
            events.append({"id": int(fields["id"]), "event": fields["event"], "data": json.loads(fields["data"])})
    return events, comments


async def wait_for(condition: Callable[[], Any], *, timeout: float = 20, what: str = "condition") -> Any:
    """Await ``condition()`` (sync or async) until truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"Timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)
