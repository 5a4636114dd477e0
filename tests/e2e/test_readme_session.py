"""The README's sample session is what a real server says today (tools/capture_session.py wrote it).

A live session, run the same way, must have the README's shape: the same
frames in the same order, each with the same type and fields (ids, times and
the number of coalesced deltas may differ). When the protocol's events change,
this fails until ``./dev docs`` captures the session again.
"""

from __future__ import annotations

import json
import re

from tests.e2e.helpers import embedded_serve
from tools.capture_session import README, run_session, shorten_deltas

ELIDED = re.compile(r"^< … \d+ more execution\.delta frames, seq \d+ to \d+ …$")


def readme_frames() -> list[str]:
    block = re.search(r"<!-- session:begin -->\n```\n(.*?)\n```\n<!-- session:end -->", README.read_text(), re.S)
    assert block, "README.md has no captured session between <!-- session:begin --> and <!-- session:end -->"
    lines = block[1].splitlines()
    assert lines[0].startswith("$ .venv/bin/python -m websockets ") and lines[1].startswith("Connected to ")
    return lines[2:]


def shape(line: str) -> tuple:
    if ELIDED.match(line):
        return ("elided",)
    direction, text = line.split(" ", 1)
    frame = json.loads(text)
    nested = {key: sorted(value) for key, value in frame.items() if isinstance(value, dict) and key != "parameters"}
    return direction, frame["type"], sorted(frame), nested


def test_readme_session_has_the_shape_of_a_live_one(tmp_path):
    with embedded_serve(tmp_path) as server:
        live = shorten_deltas(run_session(server.ws_url, server.token))
    assert [shape(line) for line in readme_frames()] == [shape(line) for line in live]


def test_long_runs_of_deltas_are_summarised_with_their_count_and_seqs():
    delta = '{{"type":"execution.delta","text":"x","execution_id":"e","seq":{}}}'
    lines = [(">", '{"type": "execute"}')] + [("<", delta.format(seq)) for seq in range(3, 13)]
    lines.append(("<", '{"type":"execution.completed","seq":13}'))
    shown = shorten_deltas(lines)
    assert shown[3] == "< … 7 more execution.delta frames, seq 5 to 11 …"
    assert [json.loads(line[2:])["seq"] for line in shown[1:3] + shown[4:5]] == [3, 4, 12]
    assert len(shown) == 6
