"""A worker's broker connection closing while Redis is down, with a token delivered and not acknowledged.

That is the state a Redis restart left a worker in (fault tests, ``redis_restarted``): its
ack had failed with the outage, Celery closed the connection, and kombu's channel, pushing the
token back to the queue, raised ``AttributeError`` — which Celery treats as unrecoverable, so the
worker process exited. ``mcp_tools.engine.broker.Transport`` (the broker transport the settings
select for Redis) closes instead, and the token stays in Redis's unacknowledged set.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from kombu import Connection, Exchange, Queue

from tests.reliability.infra import PrivateRedis

pytestmark = pytest.mark.production

QUEUE = Queue("tokens", Exchange("tokens"), "tokens")


@pytest.fixture
def redis_server(tmp_path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.stop()


def channel_left_by_an_outage(redis_server: PrivateRedis, transport: str | None):
    """A channel holding one delivered, unacknowledged token, after Redis went away and the
    connection lost its parameters (as in the worker's traceback: no pool, no client)."""
    connection = Connection(redis_server.url, transport=transport)
    with connection.Producer() as producer:
        producer.publish({"token": 1}, exchange=QUEUE.exchange, routing_key="tokens", declare=[QUEUE])
    channel = connection.default_channel
    delivered = []
    connection.Consumer(QUEUE, channel=channel, callbacks=[lambda body, message: delivered.append(message)]).consume()
    connection.drain_events(timeout=5)
    assert len(delivered) == 1 and len(channel.qos._delivered) == 1
    redis_server.stop()
    channel._pool = None
    channel.connection.client = None
    return channel


def test_kombus_own_redis_channel_raises_what_celery_takes_for_unrecoverable(redis_server):
    """The library's behaviour this module works around; if kombu fixes it, this fails: drop the workaround."""
    channel = channel_left_by_an_outage(redis_server, transport=None)
    with pytest.raises(AttributeError):
        channel.close()


def test_our_transport_closes_and_says_the_token_comes_back_later(redis_server, caplog):
    channel = channel_left_by_an_outage(redis_server, transport="mcp_tools.engine.broker:Transport")
    with caplog.at_level(logging.WARNING, logger="mcp_tools.engine.broker"):
        channel.close()
    assert channel.closed
    assert "Could not push 1 unacknowledged token(s) back" in caplog.text
    redis_server.start()  # the token was not lost: it waits in Redis's unacknowledged set
    with Connection(redis_server.url) as connection:
        assert connection.default_channel.client.hlen("unacked") == 1


def test_the_settings_select_it_for_a_redis_broker(settings):
    from config.celery import app

    assert settings.CELERY_BROKER_URL.startswith("redis://")
    with app.connection_for_write() as connection:
        assert type(connection.transport).__module__ == "mcp_tools.engine.broker"
