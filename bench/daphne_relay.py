"""The raw daphne relay: Redis pub/sub → WebSocket as a minimal ASGI app under daphne.

    BENCH_RELAY_REDIS=redis://127.0.0.1:6379/14 BENCH_RELAY_PREFIX=ns:relay: \\
        python -m daphne -b 127.0.0.1 -p 8766 bench.daphne_relay:application

The same client protocol and producer as ``bench/relay.py`` (send
``{"stream": "<id>"}``, get ``{"type": "ready"}``, then one text frame per
published message), but the server is daphne and the app is a bare ASGI
callable: no Django, no channels, no project code. One pattern subscription
per process (started by the first connection) hands each message to the
connection that asked for its stream. So daphne's own cost per relayed
message (its WebSocket protocol, its ASGI queueing) is what this measures,
the yardstick for the service's daphne CPU per message.
"""

from __future__ import annotations

import asyncio
import json
import os

import redis.asyncio as aioredis

PREFIX = os.environ.get("BENCH_RELAY_PREFIX", "relay:")
REDIS_URL = os.environ.get("BENCH_RELAY_REDIS", "redis://127.0.0.1:6379/0")

_sends: dict[str, object] = {}
_listener: asyncio.Task | None = None


async def _listen() -> None:
    client = aioredis.Redis.from_url(REDIS_URL, socket_timeout=None)
    pubsub = client.pubsub()
    await pubsub.psubscribe(PREFIX + "*")
    skip = len(PREFIX)
    async for message in pubsub.listen():
        if message["type"] != "pmessage":
            continue
        send = _sends.get(message["channel"][skip:].decode())
        if send is not None:
            await send({"type": "websocket.send", "text": message["data"].decode()})


async def application(scope, receive, send) -> None:
    global _listener
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            pass
        return
    if scope["type"] != "websocket":
        return
    if _listener is None:
        _listener = asyncio.get_running_loop().create_task(_listen())
    stream = None
    try:
        while True:
            event = await receive()
            if event["type"] == "websocket.connect":
                await send({"type": "websocket.accept"})
            elif event["type"] == "websocket.receive":
                stream = json.loads(event.get("text") or event["bytes"])["stream"]
                _sends[stream] = send
                await send({"type": "websocket.send", "text": '{"type":"ready"}'})
            elif event["type"] == "websocket.disconnect":
                return
    finally:
        if stream is not None:
            _sends.pop(stream, None)
