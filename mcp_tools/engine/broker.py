"""Celery's Redis transport, with one kombu failure turned into a warning.

When Redis goes away while a worker holds a delivered, unacknowledged token
(its ack failed with the outage), Celery closes the broker connection and
kombu 5.7's channel tries to push that token back to the queue. By then the
transport has lost its connection parameters, and building a Redis client
raises ``AttributeError`` — which Celery takes for an unrecoverable error: the
worker process exits, with every execution it was running (found in the
fault tests: a Redis restart took both workers down). Here that push-back is
skipped with a warning instead; nothing is lost, because the token stays in
Redis's unacknowledged set (restored after the visibility timeout) and the
reaper gives every execution waiting past ``MCP_PENDING_RESCUE_S`` a new
token anyway (``engine/liveness.py``). Selected in settings
(``CELERY_BROKER_TRANSPORT``) when the broker is Redis.
"""

from __future__ import annotations

import logging

from kombu.transport import redis

logger = logging.getLogger(__name__)


class QoS(redis.QoS):
    def restore_unacked_once(self, stderr=None):
        try:
            return super().restore_unacked_once(stderr)
        except AttributeError:
            logger.warning(
                "Could not push %d unacknowledged token(s) back to the broker, whose connection is gone; "
                "they come back after the visibility timeout, and waiting executions get new ones sooner.",
                len(self._delivered),
                exc_info=True,
            )


class Channel(redis.Channel):
    QoS = QoS


class Transport(redis.Transport):
    Channel = Channel
