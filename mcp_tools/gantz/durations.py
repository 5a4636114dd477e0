"""Go durations, as Gantz writes timeouts: ``500ms``, ``30s``, ``1m30s``, ``2h``.

gantz-cli hands ``timeout`` to Go's ``time.ParseDuration``, so we accept what
it accepts: a sequence of decimal numbers, each with a unit (``ns``, ``us``,
``µs``, ``ms``, ``s``, ``m``, ``h``), e.g. ``1.5h``, ``1h15m30.5s``, ``.5s``::

    parse_duration("1m30s")   # 90.0
    parse_duration("300us")   # 0.0003

Two deliberate differences:

- a bare number means seconds (``"30"``, or ``30`` from unquoted YAML).
  Go rejects it, and gantz-cli then silently falls back to its 30 s default;
  reading it as seconds is what the author meant.
- a sign is refused: a negative or zero timeout (``-1s``, ``0s``) is an
  error here, because a tool that may never run is a mistake in the file.
"""

from __future__ import annotations

import logging
import re

logger = logging.getLogger(__name__)

SECONDS_PER_UNIT = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,  # micro sign and Greek mu, as Go
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_PART = re.compile(rf"({_NUMBER})(ns|us|µs|μs|ms|s|m|h)")
_BARE_SECONDS = re.compile(_NUMBER)


class DurationError(ValueError):
    """The text is not a duration; the message says what one looks like."""


def parse_duration(text: str | float) -> float:
    """Seconds in ``text`` (a Go duration, or a bare number of seconds)."""
    if isinstance(text, bool):
        raise DurationError(f"{text!r} is not a duration like 30s, 1m30s, 500ms")
    if isinstance(text, int | float):
        return _positive(float(text), text)
    value = str(text).strip()
    if _BARE_SECONDS.fullmatch(value):
        return _positive(float(value), text)
    seconds, position = 0.0, 0
    for match in _PART.finditer(value):
        if match.start() != position:
            break
        seconds += float(match[1]) * SECONDS_PER_UNIT[match[2]]
        position = match.end()
    if not value or position != len(value):
        raise DurationError(f"{text!r} is not a duration like 30s, 1m30s, 500ms")
    return _positive(seconds, text)


def _positive(seconds: float, text: object) -> float:
    if not seconds > 0 or seconds == float("inf"):
        raise DurationError(f"{text!r} is not a positive duration")
    return seconds
