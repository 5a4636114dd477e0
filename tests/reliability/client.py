"""A careful real WebSocket client, and the checks of what it saw.

``Watcher`` follows one execution the way a well-behaved client does: it
reads events until the terminal one, and when the server says something went
wrong (an ``error``) or the connection closes, it reconnects and sends
``subscribe`` with ``after_seq`` = the last seq it has, retrying while the
service is still down::

    watcher = Watcher(stack.ws_url, token).execute("generate_report", {"data": {"k": 1}})
    watcher.until(lambda e: e["type"] == "execution.delta")   # streaming has begun
    ... inject a fault ...
    watcher.to_the_end(timeout=40)
    problems = execution_problems(watcher.events, row=stack.row(watcher.execution_id))

``execution_problems`` states docs/protocol.md's promises as checks: seq from
1 with no gap and no duplicate, exactly one terminal event and nothing after
it (so no delta after a ``failed``), the text after the last ``retrying``
equal to the result's text, and the database row's final status equal to the
terminal event. Events carry the log's epoch; on ``execution.reset`` (the live
log was lost and started again) the client drops what it had, as the
protocol says, and the checks apply to the new epoch's events.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidHandshake

from tests.conftest import TERMINAL, streamed_text
from tests.e2e.helpers import recv, send, ws_connect

STREAMED_FIELD = {"summarize_content": "summary", "generate_report": "report", "my_usage": "output"}
RECONNECT_PAUSE_S = 0.2  # a client's retry pace while the service is down


class Disrupted(Exception):
    """The server reported a problem (``until_disrupted`` stops there)."""


class Watcher:
    """Follows one execution over a real WebSocket, reconnecting when told to."""

    def __init__(self, ws_url: str, token: str) -> None:
        self.ws_url, self.token = ws_url, token
        self.ws = ws_connect(ws_url, token)
        self.execution_id = ""
        self.tool = ""
        self.events: list[dict] = []
        self.disruptions: list[str] = []
        self.timeline: list[dict | str] = []  # events and disruptions, in order
        self.arrivals: list[float] = []  # time.monotonic() of each event, for pacing checks
        self.stop_at_disruption = False
        self.must_resubscribe = False
        self.resets = 0

    def execute(self, tool: str, parameters: dict, *, use_cache: bool = False) -> Watcher:
        send(
            self.ws,
            {"type": "execute", "tool": tool, "parameters": parameters, "use_cache": use_cache, "request_id": "run"},
        )
        accepted = recv(self.ws)
        assert accepted["type"] == "execution.accepted", f"execute was answered with {accepted}"
        self.execution_id, self.tool = accepted["execution_id"], tool
        return self

    @property
    def last_seq(self) -> int:
        return self.events[-1]["seq"] if self.events else 0

    @property
    def ended(self) -> bool:
        return bool(self.events) and self.events[-1]["type"] in TERMINAL

    def until(self, predicate: Callable[[dict], bool], *, timeout: float = 30) -> dict:
        """Read events until one satisfies ``predicate`` (or the execution ends)."""
        deadline = time.monotonic() + timeout
        while True:
            event = self._next(deadline)
            if predicate(event) or self.ended:
                return event

    def until_disrupted(self, *, timeout: float) -> str:
        """Read until the server reports a problem (an error or a close); returns it.

        The resubscribe is left for later, so a test can end the outage first."""
        self.stop_at_disruption = True
        try:
            self.until(lambda event: False, timeout=timeout)
        except Disrupted as exc:
            return str(exc)
        finally:
            self.stop_at_disruption = False
        return "the execution ended"

    def to_the_end(self, *, timeout: float = 40) -> list[dict]:
        deadline = time.monotonic() + timeout
        while not self.ended:
            self._next(deadline)
        return self.events

    def _next(self, deadline: float) -> dict:
        """The next execution event; errors and closes lead to a resubscribe."""
        while True:
            if self.must_resubscribe:
                self._resubscribe(deadline)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no terminal event in time; the client saw {describe(self)}")
            try:
                message = recv(self.ws, timeout=remaining)
            except TimeoutError:
                raise TimeoutError(f"the connection went silent; the client saw {describe(self)}") from None
            except ConnectionClosed as exc:
                self._disrupted(f"closed {exc.rcvd.code if exc.rcvd else '(no close frame)'}")
                continue
            if message["type"] == "error":
                self.ws.close()
                self._disrupted(f"error {message.get('code')}")
                continue
            if message.get("execution_id") == self.execution_id and message["type"] == "execution.reset":
                self.events.clear()
                self.resets += 1
                self.timeline.append(f"reset to epoch {message['epoch']}")
                continue
            if message.get("execution_id") == self.execution_id and message["type"].startswith("execution."):
                self.events.append(message)
                self.timeline.append(message)
                self.arrivals.append(time.monotonic())
                return message

    def _resubscribe(self, deadline: float) -> None:
        """Reconnect and subscribe after the last seq, retrying while the service is down."""
        while time.monotonic() < deadline:
            try:
                self.ws = ws_connect(self.ws_url, self.token)
                send(
                    self.ws,
                    {
                        "type": "subscribe",
                        "execution_id": self.execution_id,
                        "after_seq": self.last_seq,
                        "epoch": self.events[-1]["epoch"] if self.events else None,
                    },
                )
                answer = recv(self.ws, timeout=max(0.1, deadline - time.monotonic()))
                if answer["type"] == "subscribed":
                    self.must_resubscribe = False
                    self._disrupted("resubscribed with after_seq")
                    return
                self.ws.close()
            except (OSError, InvalidHandshake, ConnectionClosed, TimeoutError):
                pass  # the service is still down
            time.sleep(RECONNECT_PAUSE_S)
        raise TimeoutError(f"could not resubscribe in time; the client saw {describe(self)}")

    def _disrupted(self, what: str) -> None:
        self.disruptions.append(what)
        self.timeline.append(what)
        if what.startswith(("closed", "error")):
            self.must_resubscribe = True
            if self.stop_at_disruption:
                raise Disrupted(what)

    def close(self) -> None:
        self.ws.close()


def describe(watcher: Watcher) -> str:
    """What the client saw, compactly: statuses, runs of deltas, disruptions, the end."""
    parts: list[str] = []
    for item in watcher.timeline:
        if isinstance(item, str):
            parts.append(f"[{item}]")
        elif item["type"] != "execution.delta":
            parts.append(_describe_event(item))
        elif not parts or parts[-1] != "deltas":
            parts.append("deltas")
    return " → ".join(parts) or "nothing"


def _describe_event(event: dict) -> str:
    kind = event["type"].removeprefix("execution.")
    if kind == "status":
        if event["status"] == "retrying":
            return f"retrying({event.get('attempt')}, {event.get('reason')})"
        return event["status"] + (f"({event['attempt']})" if event.get("attempt") else "")
    if kind == "failed":
        return f"failed({event['error']['code']})"
    return kind


def execution_problems(events: list[dict], *, tool: str, row: dict | None) -> list[str]:
    """PROTOCOL.md's promises about one execution's events, and the row that records it."""
    problems: list[str] = []
    seqs = [e["seq"] for e in events]
    if seqs != list(range(1, len(seqs) + 1)):
        problems.append(f"seq not 1..n without gap or duplicate: {seqs}")
    if not events or events[0].get("status") != "pending":
        problems.append("the first event is not pending")
    terminals = [e for e in events if e["type"] in TERMINAL]
    if len(terminals) != 1:
        problems.append(f"{len(terminals)} terminal events")
    elif events[-1] is not terminals[0]:
        problems.append(
            f"events after the terminal one: {[e['type'] for e in events[events.index(terminals[0]) + 1 :]]}"
        )
    if terminals and terminals[0]["type"] == "execution.completed":
        streamed, result = streamed_text(events), terminals[0]["result"].get(STREAMED_FIELD[tool]) or ""
        if streamed != result:
            at = next(
                (i for i, (a, b) in enumerate(zip(streamed, result, strict=False)) if a != b),
                min(len(streamed), len(result)),
            )
            problems.append(
                f"the text after the last retrying differs from the result ({len(streamed)} vs "
                f"{len(result)} characters, from character {at}: {streamed[at : at + 12]!r} vs "
                f"{result[at : at + 12]!r})"
            )
    problems += row_problems(events, terminals[-1] if terminals else None, row)
    return problems


def row_problems(events: list[dict], terminal: dict | None, row: dict | None) -> list[str]:
    if row is None:
        return ["no row in the database"]
    problems = []
    if terminal is not None and row["status"] != terminal["status"]:
        problems.append(f"row status {row['status']!r} but the client saw {terminal['status']!r}")
    stored = [(e["seq"], e["type"]) for e in row["events"] or []]
    if stored != [(e["seq"], e["type"]) for e in events]:
        problems.append(f"the row's event log differs from what the client saw: {stored}")
    return problems


def replay_problems(ws_url: str, token: str, execution_id: str, events: list[dict]) -> list[str]:
    """A fresh ``subscribe`` from seq 0 must replay exactly what was seen live, and nothing more."""
    with ws_connect(ws_url, token) as ws:
        send(ws, {"type": "subscribe", "execution_id": execution_id, "after_seq": 0})
        subscribed = recv(ws)
        replay = [recv(ws) for _ in range(subscribed.get("last_seq", 0))]
        send(ws, {"type": "ping", "request_id": "after"})
        after = recv(ws)
    problems = []
    if subscribed.get("type") != "subscribed" or subscribed.get("last_seq") != len(events):
        problems.append(f"subscribe after the end answered {json.dumps(subscribed)[:200]}")
    if [(e["seq"], e["type"]) for e in replay] != [(e["seq"], e["type"]) for e in events]:
        problems.append("the replay differs from the live events")
    if after != {"type": "pong", "request_id": "after"}:
        problems.append(f"something followed the replay: {json.dumps(after)[:200]}")
    return problems


def statuses(events: list[dict], status: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == "execution.status" and e["status"] == status]
