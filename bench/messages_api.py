"""The benchmark's Messages API: one asyncio loop streams every response.

    python -m bench.messages_api --port 0      # prints "listening on http://127.0.0.1:PORT"

The load generator must not take the CPU the service needs: the test suite's
fake (``tests/fake_anthropic.py``, a thread per request and every fault the
tests script) spent ~0.08 s of CPU per 1,000 tokens at 100 streams and ~0.18 s
at 1,000 (a thousand threads), more than Redis and the clients together. This
one speaks only what the benchmark asks for, the same way:

* ``POST /v1/messages`` with ``"stream": true``: the SSE events of a streamed
  Messages call (``message_start`` … ``content_block_delta`` × N …
  ``message_stop``), N tokens, ``delay_ms`` apart on an absolute schedule
  (no drift), or as fast as the loop goes (``delay_ms`` 0, streams taking
  turns every ``BURST`` tokens, each token still its own event and write); with ``stamp`` each token is
  ``"<index>:<time.time_ns()> "``, the moment it was written;
* ``POST /_control/default`` (the behaviour: ``tokens``, ``delay_ms``,
  ``stamp``) and ``POST /_control/reset``, as the test fake has them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid

DEFAULT = {"tokens": 10, "delay_ms": 0, "stamp": False}
# Unpaced streams write this many tokens back to back before letting the next stream write.
BURST = 16


class MessagesAPI:
    def __init__(self) -> None:
        self.behavior = dict(DEFAULT)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:  # keep-alive: one request after another on the connection
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                method, path, _ = request_line.split(" ", 2)
                headers = {
                    k.strip().lower(): v.strip()
                    for k, v in (line.split(":", 1) for line in header_lines if ":" in line)
                }
                body = await reader.readexactly(int(headers.get("content-length", 0)))
                await self.answer(method, path, json.loads(body or b"{}"), writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def answer(self, method: str, path: str, body: dict, writer: asyncio.StreamWriter) -> None:
        if method == "POST" and path == "/v1/messages" and body.get("stream"):
            await self.stream(body, writer)
        elif method == "POST" and path == "/_control/default":
            self.behavior = {**DEFAULT, **body}
            respond_json(writer, 200, {"ok": True})
        elif method == "POST" and path == "/_control/reset":
            self.behavior = dict(DEFAULT)
            respond_json(writer, 200, {"ok": True})
        else:
            respond_json(
                writer,
                404,
                {"type": "error", "error": {"type": "not_found_error", "message": f"No route {method} {path}."}},
            )
        await writer.drain()

    async def stream(self, body: dict, writer: asyncio.StreamWriter) -> None:
        behavior = self.behavior
        tokens, delay_s, stamp = int(behavior["tokens"]), float(behavior["delay_ms"]) / 1000, behavior["stamp"]
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
            b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n"
        )
        message = {
            "id": f"msg_bench_{uuid.uuid4().hex[:12]}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", "unknown"),
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 1, "output_tokens": 1},
        }
        write_event(writer, "message_start", {"type": "message_start", "message": message})
        write_event(
            writer,
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        )
        started = time.monotonic()
        for index in range(tokens):
            if delay_s:
                wait_s = started + index * delay_s - time.monotonic()
                if wait_s > 0:
                    await asyncio.sleep(wait_s)
            elif index % BURST == 0:
                await asyncio.sleep(0)  # as fast as possible, but every stream gets its turn
            text = f"{index}:{time.time_ns()} " if stamp else f"w{index} "
            write_event(
                writer,
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
            )
            await writer.drain()  # a client that hung up ends the stream here
        write_event(writer, "content_block_stop", {"type": "content_block_stop", "index": 0})
        write_event(
            writer,
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": tokens},
            },
        )
        write_event(writer, "message_stop", {"type": "message_stop"})
        writer.write(b"0\r\n\r\n")


def write_event(writer: asyncio.StreamWriter, name: str, data: dict) -> None:
    payload = f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()
    writer.write(b"%x\r\n%s\r\n" % (len(payload), payload))


def respond_json(writer: asyncio.StreamWriter, status: int, data: dict) -> None:
    payload = json.dumps(data).encode()
    reason = {200: "OK", 404: "Not Found"}[status]
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(payload)}\r\n\r\n".encode()
        + payload
    )


async def main(host: str, port: int) -> None:
    api = MessagesAPI()
    server = await asyncio.start_server(api.serve, host, port, backlog=4096, limit=2**20)
    print(f"listening on http://{host}:{server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="The benchmark's Messages API (bench/).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args()
    try:
        asyncio.run(main(args.host, args.port))
    except KeyboardInterrupt:
        pass
