"""parse_duration reads Go durations as gantz-cli's timeouts are written."""

from __future__ import annotations

import pytest

from mcp_tools.gantz import DurationError, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("30s", 30.0),
        ("1m30s", 90.0),
        ("2h", 7200.0),
        ("1.5h", 5400.0),
        ("300us", 0.0003),
        ("300µs", 0.0003),
        ("300μs", 0.0003),
        ("1500000ns", 0.0015),
        ("1h15m30.5s", 4530.5),
        (".5s", 0.5),
        ("1.s", 1.0),
        ("2m0s", 120.0),
    ],
)
def test_go_durations_are_read_in_seconds(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(("value", "seconds"), [("30", 30.0), ("1.5", 1.5), (30, 30.0), (0.25, 0.25)])
def test_a_bare_number_is_seconds(value, seconds):
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    "text",
    [
        "30x",
        "",
        " ",
        "s",
        "1m30",
        "1 m",
        "-1s",
        "+1s",
        "0s",
        "0",
        "1d",
        "1e3s",
        "1h-5m",
        "ms30",
        True,
        "inf",
        "nan",
    ],
)
def test_anything_else_is_refused_with_an_example_of_a_duration(text):
    with pytest.raises(DurationError) as caught:
        parse_duration(text)
    assert "duration" in str(caught.value)
