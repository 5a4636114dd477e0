"""Events written from synchronous service code: the same log and channels, no coalescing.

Request threads write a few events each: an execution's first event
(``pending``, which creates its log), an answer from the cache, a cancel of a
queued execution, a worker-loss retry. ``EventWriter`` numbers them through
the event log and sends them like the worker's publisher does; a terminal
event is only logged by ``append`` and sent with ``send`` once the row says
so (``mcp_tools/outcomes.py``)::

    writer = EventWriter(execution_id=..., tool="generate_report", user="ann", epoch=epoch)
    writer.create(status_event("pending"))
    [appended] = writer.append([cancelled_event(...)])
    writer.send({**event, "seq": appended.seq})
"""

from __future__ import annotations

from .backends import RedisEventLog, get_event_log
from .dispatch import layer_messages, monitor_members, script_channels, send_logged
from .log import Appended, Entry
from .schema import TERMINAL_TYPES, Event


class EventWriter:
    def __init__(self, *, execution_id: str, tool: str, user: str, epoch: str) -> None:
        self.execution_id = execution_id
        self.tool = tool
        self.user = user
        self.epoch = epoch
        self.log = get_event_log()
        # Over Redis the log script also publishes each event (dispatch.script_channels).
        self.channels = script_channels() if isinstance(self.log, RedisEventLog) else None
        self._members = monitor_members(tool=tool, user=user)

    def create(self, event: Event) -> Appended:
        """Start the log (a new epoch) with its first event, and send it."""
        event = {**event, "execution_id": self.execution_id}
        appended = self.log.create(self._entry(event, attempt=0))
        self._sent_by_us(event, appended)
        return appended

    def append(self, events: list[Event], *, attempt: int = 0) -> list[Appended]:
        """Log events in one round trip; non-terminal ones are sent, terminal ones only logged."""
        events = [{**event, "execution_id": self.execution_id} for event in events]
        results = self.log.append_many([self._entry(event, attempt=attempt) for event in events])
        for event, appended in zip(events, results, strict=True):
            self._sent_by_us(event, appended)
        return results

    def send(self, event: Event) -> None:
        """Send a logged event (with its seq)."""
        event = {**event, "epoch": self.epoch}
        if self.channels is not None and isinstance(self.log, RedisEventLog):
            self.log.publish(self.channels.payloads(event, self._members))
        else:
            send_logged(layer_messages(event, tool=self.tool, user=self.user))

    def _entry(self, event: Event, *, attempt: int) -> Entry:
        publish = None
        if self.channels is not None and event["type"] not in TERMINAL_TYPES:
            publish = self.channels.targets(self.execution_id, event["type"], self._members)
        return Entry(self.execution_id, event, self.epoch, attempt, publish)

    def _sent_by_us(self, event: Event, appended: Appended) -> None:
        """Without the script's publishing, the dispatcher sends what was logged."""
        if appended.seq is None or self.channels is not None or event["type"] in TERMINAL_TYPES:
            return
        send_logged(layer_messages({**event, "seq": appended.seq, "epoch": self.epoch}, tool=self.tool, user=self.user))
