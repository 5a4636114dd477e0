"""Capture the README's sample WebSocket session from a real server, so it stays true.

    .venv/bin/python tools/capture_session.py          # or: ./dev docs
    .venv/bin/python tools/capture_session.py --print  # show it, change nothing

Starts the embedded default (``manage.py serve`` on a free port, a fresh
SQLite database in a temporary directory, the offline provider), connects a
real WebSocket client and runs the README's session: ``execute``
generate_report, every event to the terminal one, then ``subscribe`` with
``after_seq`` two below the last seq, which replays exactly the last two.
The frames are written as ``python -m websockets`` shows them (``>`` sent,
``<`` received), verbatim except: the port and token read as ``./dev run``
prints them (8000, ``<token>``), and the middle deltas are summarised in one
line that says how many there were. The README's block between
``<!-- session:begin -->`` and ``<!-- session:end -->`` is replaced; nothing
else in it changes.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.helpers import TERMINAL, embedded_serve  # noqa: E402
from tools.update_docs import replace_sections  # noqa: E402

README = ROOT / "README.md"
EXECUTE = {
    "type": "execute",
    "tool": "generate_report",
    "parameters": {"data": {"sales": [3, 5, 8]}},
    "request_id": "r1",
}
DELTAS_SHOWN_FIRST, DELTAS_SHOWN_LAST = 2, 1
REPLAYED = 2


def run_session(ws_url: str, token: str) -> list[tuple[str, str]]:
    """The session as (direction, frame text) pairs, frames exactly as sent and received."""
    from websockets.sync.client import connect

    lines: list[tuple[str, str]] = []
    with connect(f"{ws_url}/ws/executions/?token={token}", open_timeout=10) as ws:

        def send(message: dict) -> None:
            lines.append((">", json.dumps(message)))
            ws.send(json.dumps(message))

        def receive_until_terminal() -> list[dict]:
            events = []
            while True:
                text = ws.recv(timeout=30)
                lines.append(("<", text))
                events.append(json.loads(text))
                if events[-1]["type"] in TERMINAL:
                    return events

        send(EXECUTE)
        events = receive_until_terminal()
        send(
            {"type": "subscribe", "execution_id": events[0]["execution_id"], "after_seq": events[-1]["seq"] - REPLAYED}
        )
        receive_until_terminal()
    return lines


def shorten_deltas(lines: list[tuple[str, str]]) -> list[str]:
    """Each run of consecutive delta frames keeps its first and last ones; one line counts the rest."""
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if len(run) <= DELTAS_SHOWN_FIRST + DELTAS_SHOWN_LAST + 1:
            out.extend(f"< {text}" for text in run)
        else:
            hidden = run[DELTAS_SHOWN_FIRST:-DELTAS_SHOWN_LAST]
            seqs = [json.loads(text)["seq"] for text in hidden]
            out.extend(f"< {text}" for text in run[:DELTAS_SHOWN_FIRST])
            out.append(f"< … {len(hidden)} more execution.delta frames, seq {seqs[0]} to {seqs[-1]} …")
            out.extend(f"< {text}" for text in run[-DELTAS_SHOWN_LAST:])
        run.clear()

    for direction, text in lines:
        if direction == "<" and json.loads(text)["type"] == "execution.delta":
            run.append(text)
            continue
        flush()
        out.append(f"{direction} {text}")
    flush()
    return out


def session_block(ws_url: str, token: str, lines: list[tuple[str, str]]) -> str:
    shown_url = "ws://127.0.0.1:8000/ws/executions/?token=<token>"
    body = "\n".join(shorten_deltas(lines)).replace(token, "<token>")
    return "\n".join(
        [
            "```",
            f"$ .venv/bin/python -m websockets '{shown_url}'",
            f"Connected to {shown_url}.",
            body.replace(ws_url.removeprefix("ws://"), "127.0.0.1:8000"),
            "```",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--print", action="store_true", help="print the block; leave README.md alone")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mcp-session-") as data_dir, embedded_serve(Path(data_dir)) as server:
        lines = run_session(server.ws_url, server.token)
        block = session_block(server.ws_url, server.token, lines)
    if args.print:
        print(block)
        return 0
    README.write_text(replace_sections(README.read_text(), {"session": block}))
    print(f"README.md: sample session captured ({len(lines)} frames)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
