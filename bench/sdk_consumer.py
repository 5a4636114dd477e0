"""The bare SDK reference: N concurrent ``AsyncAnthropic`` streams on one loop, nothing else.

    python -m bench.sdk_consumer --base-url http://127.0.0.1:PORT --streams 1000 --tokens 100 --ramp 5 \\
        --start-at <epoch seconds> [--raw]

What a worker process could not do with less CPU: the same stream shapes as the
service case (``bench/messages_api.py``, its behaviour set by ``bench/run.py``
beforehand), consumed with ``client.messages.create(stream=True)`` and
``async for event in stream`` — the SDK's typed events, as a plain SDK user
reads them — keeping only each text delta. ``--raw`` reads the SDK's raw
server-sent events instead (``AsyncStream.raw_events`` and one ``json.loads``
per delta: what the service's provider does), for comparison.

Prints one JSON line: ``cpu_s`` is this process's CPU (user + system) from the
go time until the last stream ended (client construction and imports are not
counted), with ``tokens``, ``events``, the token latencies (stamp → event
parsed, from the texts kept) and lost / reordered counts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import anthropic  # noqa: E402

from bench.cases import percentile  # noqa: E402


async def one_stream(
    client: anthropic.AsyncAnthropic,
    index: int,
    start_at: float,
    raw: bool,
    texts: list[tuple[int, str]],
    counts: dict[str, int],
) -> None:
    delay = start_at - time.time()
    if delay > 0:
        await asyncio.sleep(delay)
    stream = await client.messages.create(
        model="claude-bench", max_tokens=1024, stream=True, messages=[{"role": "user", "content": f"stream {index}"}]
    )
    events = 0
    if raw:
        async for sse in anthropic.AsyncStream.raw_events(stream.response):
            events += 1
            if sse.event == "content_block_delta":
                texts.append((time.time_ns(), json.loads(sse.data)["delta"]["text"]))
    else:
        async for event in stream:
            events += 1
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                texts.append((time.time_ns(), event.delta.text))
    counts["events"] += events


async def main(args: argparse.Namespace) -> dict:
    client = anthropic.AsyncAnthropic(api_key="bench-key", base_url=args.base_url, max_retries=0, timeout=120)
    per_stream: list[list[tuple[int, str]]] = [[] for _ in range(args.streams)]
    counts = {"events": 0}
    start_at = args.start_at or time.time() + 0.5
    cpu_before = os.times()
    results = await asyncio.gather(
        *(
            one_stream(client, i, start_at + args.ramp * i / max(args.streams, 1), args.raw, per_stream[i], counts)
            for i in range(args.streams)
        ),
        return_exceptions=True,
    )
    cpu_after = os.times()
    cpu_s = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
    errors = [repr(r) for r in results if isinstance(r, BaseException)]
    latencies, tokens, lost, reordered = [], 0, 0, 0
    first_stamp, last_stamp, last_recv = 0, 0, 0
    for texts in per_stream:
        expected = 0
        for recv_ns, text in texts:
            for token in text.split():
                i, _, stamp = token.partition(":")
                i, stamp_ns = int(i), int(stamp)
                reordered += i < expected
                lost += max(0, i - expected)
                expected = max(expected, i + 1)
                tokens += 1
                latencies.append((recv_ns - stamp_ns) / 1e6)
                first_stamp = min(first_stamp or stamp_ns, stamp_ns)
                last_stamp, last_recv = max(last_stamp, stamp_ns), max(last_recv, recv_ns)
        lost += max(0, args.tokens - expected)
    await client.close()
    return {
        "cpu_s": cpu_s,
        "tokens": tokens,
        "events": counts["events"],
        "errors": errors[:3],
        "error_count": len(errors),
        "lost": lost,
        "reordered": reordered,
        "lat_p50_ms": percentile(latencies, 50),
        "lat_p99_ms": percentile(latencies, 99),
        "first_stamp_ns": first_stamp,
        "last_stamp_ns": last_stamp,
        "last_recv_ns": last_recv,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--streams", type=int, default=1)
    parser.add_argument("--tokens", type=int, default=200, help="tokens per stream (as the fake API was told)")
    parser.add_argument("--ramp", type=float, default=0.0)
    parser.add_argument("--start-at", type=float, default=0.0)
    parser.add_argument("--raw", action="store_true", help="raw server-sent events, as the service's provider reads")
    print(json.dumps(asyncio.run(main(parser.parse_args()))), flush=True)
