"""The per-execution output cap (MCP_MAX_OUTPUT_BYTES): the run ends ``output_too_large``, nothing before it lost.

In this process's engine (the cap is a setting the test lowers); the default
cap through the whole service is in ``test_gantz_failures.py``. The cap
counts the output as the JSON it travels in (``mcp_tools/tools/context.py``).
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_now, streamed_text
from tests.tools.service import within_json

pytestmark = pytest.mark.django_db(transaction=True)

CAP = 100


@pytest.fixture
def small_cap(settings, tools_synced):
    settings.MCP_CONFIG = {**settings.MCP_CONFIG, "MAX_OUTPUT_BYTES": CAP}


@pytest.mark.parametrize(
    ("tool", "parameters", "text"),
    [
        ("count_to", {"n": 100}, "".join(f"{i}\n" for i in range(1, 101))),  # Python, ctx.emit
        ("word_stats", {"text": "é\t" * 40}, "é\n" * 40),  # Python, a plain def
        ("lines", {"n": 100}, "".join(f"line {i:06d}\n" for i in range(1, 101))),  # Gantz script
    ],
)
def test_output_past_the_cap_ends_the_run_keeping_what_fit(small_cap, alice, tool, parameters, text):
    execution = run_now(alice, tool, parameters)
    kept = within_json(text, CAP)
    assert (execution.status, execution.error_code) == ("failed", "output_too_large")
    assert f"more than {CAP} bytes" in execution.error
    assert execution.result == {"output": kept} and len(json.dumps(kept)) - 2 <= CAP
    assert streamed_text(execution.events) == kept


def test_output_up_to_the_cap_completes(small_cap, alice):
    execution = run_now(alice, "count_to", {"n": 9})  # "1\n" ... "9\n": 9 × 3 bytes as JSON
    assert execution.status == "completed" and execution.result["output"] == "".join(f"{i}\n" for i in range(1, 10))
