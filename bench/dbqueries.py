"""Database queries per execution, at 10 and at 10,000 tokens.

Runs one execution of each size through the one service path
(``services.execution_start(inline=True)``: the runner the Celery task runs,
in this process) against the benchmark's PostgreSQL database and Redis, with
Django's ``CaptureQueriesContext`` counting every statement. Started by
``bench/run.py`` with the benchmark's environment; prints one JSON line::

    {"10": {"queries": 9, "deltas": 1, ...}, "10000": {"queries": 9, ...}}
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from mcp_tools import services  # noqa: E402
from tests.fake_anthropic import FakeAnthropic  # noqa: E402

SIZES = (10, 10_000)


def count(fake: FakeAnthropic, user, tokens: int) -> dict:
    fake.set_default({"tokens": tokens})
    with CaptureQueriesContext(connection) as captured:
        execution = services.execution_start(user=user, tool_name="generate_report",
                                             parameters={"data": {"tokens": tokens}}, use_cache=False, inline=True)
    execution.refresh_from_db()
    kinds: dict[str, int] = {}
    for query in captured.captured_queries:
        verb = query["sql"].split(None, 1)[0].upper()
        kinds[verb] = kinds.get(verb, 0) + 1
    return {"queries": len(captured.captured_queries), "by_verb": kinds, "status": execution.status,
            "output_tokens": execution.output_tokens,
            "deltas": sum(e["type"] == "execution.delta" for e in execution.events)}


def main() -> None:
    with FakeAnthropic() as fake:
        settings.ANTHROPIC_BASE_URL = fake.url
        user = get_user_model().objects.get(username="bench0")
        count(fake, user, 10)  # warm-up: first-use queries (content types, sessions) are not per execution
        print(json.dumps({str(tokens): count(fake, user, tokens) for tokens in SIZES}))


if __name__ == "__main__":
    main()
