"""Fixtures and helpers of the hardening tests: the REST tests' ASGI client, the MCP tests' uvicorn,
another daphne."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from tests.api.conftest import asgi_http  # noqa: F401  (fixture)
from tests.mcp.conftest import uvicorn_server  # noqa: F401  (fixture)
from tests.stack import STARTUP_TIMEOUT_S, Stack, free_port, wait_until


def answers(url: str) -> bool:
    """Whether a server answers ``url`` below 500 (redirects not followed: HTTPS=true redirects to https)."""
    try:
        return httpx.get(url, timeout=2).status_code < 500
    except httpx.HTTPError:
        return False


@contextmanager
def another_daphne(stack: Stack, name: str, **env: str) -> Iterator[int]:
    """One more daphne on the stack's deployment (same database, Redis and workers) with ``env``
    on top of the stack's; yields its port, stops it afterwards."""
    port = free_port()
    daphne = stack.spawn(
        name,
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
        env={**stack.env, **env},
    )
    try:
        wait_until(
            lambda: answers(f"http://127.0.0.1:{port}/accounts/login/") or daphne.popen.poll() is not None,
            timeout=STARTUP_TIMEOUT_S,
            what=f"daphne {name}",
        )
        assert daphne.popen.poll() is None, daphne.log()[-3000:]
        yield port
    finally:
        daphne.stop()
