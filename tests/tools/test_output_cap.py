"""The per-execution output cap (MCP_MAX_OUTPUT_BYTES): the run ends ``output_too_large``, nothing before it lost.

In this process's engine (the cap is a setting the test lowers); the same
cap through the whole service is in ``test_gantz_failures.py``.
"""
from __future__ import annotations

import pytest

from tests.conftest import run_now, streamed_text

pytestmark = pytest.mark.django_db(transaction=True)

CAP = 100


@pytest.fixture
def small_cap(settings, tools_synced):
    settings.MCP_CONFIG = {**settings.MCP_CONFIG, "MAX_OUTPUT_BYTES": CAP}


@pytest.mark.parametrize(("tool", "parameters", "text"), [
    ("count_to", {"n": 100}, "".join(f"{i}\n" for i in range(1, 101))),            # Python, ctx.emit
    ("lines", {"n": 100}, "".join(f"line {i:06d}\n" for i in range(1, 101))),       # Gantz script
])
def test_output_past_the_cap_ends_the_run_keeping_what_fit(small_cap, alice, tool, parameters, text):
    execution = run_now(alice, tool, parameters)
    kept = text[:CAP]
    assert (execution.status, execution.error_code) == ("failed", "output_too_large")
    assert f"more than {CAP} bytes" in execution.error
    assert execution.result == {"output": kept}
    assert streamed_text(execution.events) == kept
