"""Database queries per execution, at 10 and at 10,000 tokens.

Runs one execution of each size through the service's path in this process
(``services.execution_start_uncached``: the row and the queue token, as an
``execute`` does; then ``engine.runner.run_here``: the claim and the run the
worker's engine does) against the benchmark's PostgreSQL database, Redis and
Messages API (``ANTHROPIC_BASE_URL``, tokens 1 ms apart so that many deltas
are stored), and counts every statement of every database connection opened
meanwhile, in any thread (the engine writes from its own threads), as
``tests/mcp_tools/test_queries.py`` does. Started by ``bench/run.py`` with the
benchmark's environment; prints one JSON line::

    {"10": {"queries": 9, "deltas": 1, ...}, "10000": {"queries": 9, ...}}
"""

from __future__ import annotations

import json
import os
import sys
import threading
import urllib.request
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.backends.signals import connection_created  # noqa: E402

from mcp_tools import services  # noqa: E402
from mcp_tools.engine.runner import run_here  # noqa: E402
from mcp_tools.models import ToolExecution  # noqa: E402

SIZES = (10, 10_000)


@contextmanager
def every_query():
    counted: list[str] = []
    lock = threading.Lock()

    def count(execute, sql, params, many, context):
        with lock:
            counted.append(sql)
        return execute(sql, params, many, context)

    def hook(sender, connection, **kwargs):
        if count not in connection.execute_wrappers:
            connection.execute_wrappers.append(count)

    connection_created.connect(hook)
    connection.close()  # this thread reconnects, with the hook
    try:
        yield counted
    finally:
        connection_created.disconnect(hook)


def fake_default(behavior: dict) -> None:
    request = urllib.request.Request(
        settings.ANTHROPIC_BASE_URL + "/_control/default",
        method="POST",
        data=json.dumps(behavior).encode(),
        headers={"content-type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=30).read()


def count(user, tokens: int) -> dict:
    fake_default({"tokens": tokens, "delay_ms": 1})
    with every_query() as counted:
        execution = services.execution_start_uncached(
            user=user, tool_name="generate_report", parameters={"data": {"tokens": tokens}}
        )
        run_here(str(execution.pk))
    execution = ToolExecution.objects.get(pk=execution.pk)
    kinds: dict[str, int] = {}
    for sql in counted:
        verb = sql.split(None, 1)[0].upper()
        kinds[verb] = kinds.get(verb, 0) + 1
    return {
        "queries": len(counted),
        "by_verb": kinds,
        "status": execution.status,
        "output_tokens": execution.output_tokens,
        "deltas": sum(e["type"] == "execution.delta" for e in execution.events),
    }


def main() -> None:
    # No reaper pass in the middle (its reads are the engine's, not the execution's).
    settings.MCP_CONFIG = {**settings.MCP_CONFIG, "REAPER_INTERVAL_S": 3600}
    user = get_user_model().objects.get(username="bench0")
    count(user, 10)  # warm-up: first-use queries (content types, sessions) are not per execution
    print(json.dumps({str(tokens): count(user, tokens) for tokens in SIZES}))


if __name__ == "__main__":
    main()
