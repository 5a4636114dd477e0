"""``./dev test``: a selection runs in whichever pass it matches, and says so when it matches none.

``./dev test`` runs pytest twice (embedded default, then ``-m production``); a
``-k`` or a path usually matches tests of one pass only, and the other pass
then exits 5 ("no tests collected"). That must not fail the command.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.stack import ROOT

NO_TESTS_COLLECTED = 5
EMBEDDED_ONLY = "tests/web/test_views.py::test_anonymous_visitor_is_sent_to_the_login_page"
PRODUCTION_ONLY = "tests/mcp_tools/test_redis_cache.py"


def dev_test(*args: str) -> subprocess.CompletedProcess:
    # A clean environment, as a shell would have it: the outer run's pytest variables would leak in.
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    return subprocess.run(
        ["./dev", "test", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def verdict(embedded: int, production: int) -> int:
    script = f"source ./dev; test_verdict {embedded} {production}"
    return subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True).returncode


@pytest.mark.parametrize(
    ("embedded", "production", "expected"),
    [
        (0, 0, 0),
        (0, NO_TESTS_COLLECTED, 0),
        (NO_TESTS_COLLECTED, 0, 0),
        (1, NO_TESTS_COLLECTED, 1),
        (NO_TESTS_COLLECTED, 1, 1),
        (0, 1, 1),
        (2, 0, 2),
        (NO_TESTS_COLLECTED, NO_TESTS_COLLECTED, NO_TESTS_COLLECTED),
    ],
)
def test_verdict_of_the_two_passes(embedded, production, expected):
    assert verdict(embedded, production) == expected


def test_selection_of_an_embedded_test_exits_zero():
    result = dev_test(EMBEDDED_ONLY)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout and "1 deselected" in result.stdout


def test_selection_of_a_production_test_exits_zero():
    result = dev_test(PRODUCTION_ONLY)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 deselected" in result.stdout and "1 passed" in result.stdout


def test_selection_matching_nothing_says_so_and_fails():
    result = dev_test("-k", "no_test_is_named_like_this")
    assert result.returncode == NO_TESTS_COLLECTED, result.stdout + result.stderr
    assert "no test matched the selection in either pass" in result.stderr
