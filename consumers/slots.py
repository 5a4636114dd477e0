"""Open WebSocket connections per user, counted in this server process (``WS_MAX_CONNECTIONS_PER_USER``).

A connection takes a slot once its user is known and gives it back however it
ends (``ExecutionConsumer.release``).
"""

from __future__ import annotations

from django.conf import settings


class ConnectionSlots:
    """Open connections per user, in this server process."""

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}

    def take(self, user_id: int) -> bool:
        if self.counts.get(user_id, 0) >= settings.MCP_CONFIG["WS_MAX_CONNECTIONS_PER_USER"]:
            return False
        self.counts[user_id] = self.counts.get(user_id, 0) + 1
        return True

    def give_back(self, user_id: int) -> None:
        self.counts[user_id] -= 1
        if not self.counts[user_id]:
            del self.counts[user_id]


slots = ConnectionSlots()
