"""The reference relay: the raw limit of Redis pub/sub → WebSocket on this machine.

No project code on the path. A *producer* publishes one Redis ``PUBLISH`` per
token, each token carrying its index and send time (the same ``"<i>:<t_ns> "``
text the fake Messages API streams, wrapped in a small JSON object); a
minimal ``websockets`` *server* holds one pattern subscription and forwards
each message, unchanged, to the client that asked for that stream::

    python -m bench.relay serve --port 8765 --redis redis://127.0.0.1:6379/14 --prefix ns:relay:
    python -m bench.relay produce --redis ... --prefix ns:relay: --streams 100 --tokens 200 \\
        --rate 50 --ramp 1 --start-at <epoch seconds>

Client protocol: send ``{"stream": "<id>"}``, get ``{"type": "ready"}``, then
one text frame per token.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import json
import logging
import time

import redis.asyncio as aioredis
import websockets

logger = logging.getLogger(__name__)

# Tokens published per pipeline round trip at most, so one batch never starves the loop.
MAX_BATCH = 500


async def serve(port: int, redis_url: str, prefix: str) -> None:
    clients: dict[str, websockets.ServerConnection] = {}

    async def handler(ws: websockets.ServerConnection) -> None:
        stream = json.loads(await ws.recv())["stream"]
        clients[stream] = ws
        await ws.send('{"type":"ready"}')
        try:
            await ws.wait_closed()
        finally:
            clients.pop(stream, None)

    client = aioredis.Redis.from_url(redis_url, socket_timeout=None)
    pubsub = client.pubsub()
    await pubsub.psubscribe(prefix + "*")
    skip = len(prefix)
    async with websockets.serve(handler, "127.0.0.1", port, compression=None, max_queue=None, ping_interval=None):
        print(f"listening on ws://127.0.0.1:{port}", flush=True)
        async for message in pubsub.listen():
            if message["type"] != "pmessage":
                continue
            ws = clients.get(message["channel"][skip:].decode())
            if ws is not None:
                await ws.send(message["data"].decode())


async def produce(
    redis_url: str, prefix: str, *, streams: int, tokens: int, rate: float, ramp_s: float, start_at: float
) -> int:
    """Publish every stream's tokens on schedule (``rate`` 0 = as fast as possible)."""
    client = aioredis.Redis.from_url(redis_url)
    interval = 1.0 / rate if rate else 0.0
    heap = [(start_at + ramp_s * s / max(streams, 1), s, 0) for s in range(streams)]
    heapq.heapify(heap)
    published = 0
    while heap:
        now = time.time()
        if heap[0][0] > now:
            await asyncio.sleep(heap[0][0] - now)
            continue
        pipe = client.pipeline(transaction=False)
        while heap and heap[0][0] <= now and len(pipe) < MAX_BATCH:
            due, stream, index = heapq.heappop(heap)
            text = f"{index}:{time.time_ns()} "
            pipe.publish(f"{prefix}{stream}", json.dumps({"type": "delta", "seq": index + 1, "text": text}))
            if index + 1 < tokens:
                heapq.heappush(heap, (due + interval, stream, index + 1))
        published += len(pipe)
        await pipe.execute()
    await client.aclose()
    return published


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["serve", "produce"])
    parser.add_argument("--redis", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--streams", type=int, default=1)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--ramp", type=float, default=0)
    parser.add_argument("--start-at", type=float, default=0)
    args = parser.parse_args(argv)
    if args.mode == "serve":
        asyncio.run(serve(args.port, args.redis, args.prefix))
    else:
        count = asyncio.run(
            produce(
                args.redis,
                args.prefix,
                streams=args.streams,
                tokens=args.tokens,
                rate=args.rate,
                ramp_s=args.ramp,
                start_at=args.start_at or time.time(),
            )
        )
        print(f"published {count} cpu {time.process_time():.3f}", flush=True)


if __name__ == "__main__":
    main()
