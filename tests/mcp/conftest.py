"""``uvicorn_server``: the project's ASGI app served by a real uvicorn, in this process.

For embedded-mode MCP tests (the default pass): uvicorn runs in a thread of
its own with its own event loop, speaks the ASGI lifespan protocol (which
daphne does not), and shares this process's settings and test database, so
tests create users with the ORM and see the rows the embedded worker writes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import uvicorn

from tests.stack import free_port, wait_until


@dataclass
class UvicornServer:
    url: str
    server: uvicorn.Server
    thread: threading.Thread


@pytest.fixture
def uvicorn_server(transactional_db) -> Iterator[UvicornServer]:
    from config.asgi import application

    port = free_port()
    config = uvicorn.Config(application, host="127.0.0.1", port=port, lifespan="on", log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), timeout=20, what="uvicorn")
    assert thread.is_alive(), "uvicorn did not start"
    try:
        yield UvicornServer(url=f"http://127.0.0.1:{port}", server=server, thread=thread)
    finally:
        server.should_exit = True
        thread.join(20)
