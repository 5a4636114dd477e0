"""How a logged event reaches its followers: one of two ways, chosen once per process.

* **The log script publishes** (production default: Redis with
  ``RedisPubSubChannelLayer`` and the JSON serializer, on the log's own Redis
  server). The append script PUBLISHes the numbered event to the group's
  pub/sub channel in the layer's message format, so numbering and sending are
  one step and cost no extra round trip. The channel names are asked of the
  installed layer (``group_channel``), never spelled here.
* **It is sent through the channel layer** (``send_logged``): the embedded
  default's in-memory layer takes messages from any thread or event loop
  (``memory_layer.py``).

Messages are ``{"type": "execution.event", "event": ...}`` to an execution's
group and ``{"type": "monitor.event", "event": ... + tool, user}`` to the
monitor group (status and terminal events only).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import lru_cache

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

from .schema import MONITOR_GROUP, MONITOR_TYPES, Event, execution_group

logger = logging.getLogger(__name__)

PUBSUB_LAYER = "channels_redis.pubsub.RedisPubSubChannelLayer"


@dataclass(frozen=True)
class ScriptChannels:
    """The pub/sub channels the log script publishes to (``script_channels()``)."""

    execution_prefix: str  # + execution id = the execution's group channel
    monitor: str

    def targets(self, execution_id: str, event_type: str, monitor_members: str) -> tuple[str, str, str]:
        """What ``log.Entry.publish`` needs for this event."""
        monitor = event_type in MONITOR_TYPES
        return (
            self.execution_prefix + execution_id,
            self.monitor if monitor else "",
            monitor_members if monitor else "",
        )

    def payloads(self, event: Event, monitor_members: str) -> list[tuple[str, str]]:
        """(channel, payload) pairs that publish a logged event as the log script would."""
        body = json.dumps(event, separators=(",", ":"))
        pairs = [(self.execution_prefix + event["execution_id"], f'{{"type":"execution.event","event":{body}}}')]
        if event["type"] in MONITOR_TYPES:
            pairs.append((self.monitor, f'{{"type":"monitor.event","event":{body[:-1]}{monitor_members}}}}}'))
        return pairs


def monitor_members(*, tool: str, user: str) -> str:
    """The JSON members the monitor's copy of an event adds (``,"tool":...,"user":...``)."""
    return "," + json.dumps({"tool": tool, "user": user}, separators=(",", ":"))[1:-1]


def group_channel(group: str) -> str:
    """The pub/sub channel the installed pub/sub layer uses for ``group``, asked of the layer itself."""
    from channels_redis.pubsub import RedisPubSubLoopLayer

    config = settings.CHANNEL_LAYERS["default"].get("CONFIG", {})
    # A loop layer connects lazily: building one to ask for a name opens nothing.
    return RedisPubSubLoopLayer(
        hosts=config.get("hosts"), prefix=config.get("prefix", "asgi"), channel_layer=None
    )._get_group_channel_name(group)


@lru_cache(maxsize=1)
def script_channels() -> ScriptChannels | None:
    """Where the log script publishes, or None if this configuration needs the dispatcher."""
    layer = settings.CHANNEL_LAYERS["default"]
    config = layer.get("CONFIG", {})
    hosts = config.get("hosts", [])
    if (
        layer["BACKEND"] != PUBSUB_LAYER
        or config.get("serializer_format") != "json"
        or config.get("symmetric_encryption_keys")
        or len(hosts) != 1
        or not settings.EVENT_LOG_URL
    ):
        return None
    address = hosts[0]["address"] if isinstance(hosts[0], dict) else hosts[0]
    if address != settings.EVENT_LOG_URL:
        return None
    return ScriptChannels(execution_prefix=group_channel(execution_group("")), monitor=group_channel(MONITOR_GROUP))


def layer_messages(event: Event, *, tool: str, user: str) -> list[tuple[str, dict]]:
    """The channel-layer messages that carry a logged event: (group, message) pairs."""
    messages = [(execution_group(event["execution_id"]), {"type": "execution.event", "event": event})]
    if event["type"] in MONITOR_TYPES:
        messages.append((MONITOR_GROUP, {"type": "monitor.event", "event": {**event, "tool": tool, "user": user}}))
    return messages


def send_logged(messages: list[tuple[str, dict]]) -> None:
    """Send channel-layer messages from any thread or loop (when the log script does not publish).

    The embedded default's layer takes them thread-safely (``memory_layer.py``);
    any other layer gets them through ``async_to_sync`` (a new event loop per
    call: correct, but slow, docs/design.md)."""
    layer = get_channel_layer()
    send = getattr(layer, "group_send_threadsafe", None)
    for group, message in messages:
        if send is not None:
            send(group, message)
        else:
            async_to_sync(layer.group_send)(group, message)
