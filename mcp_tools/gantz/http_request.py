"""Running a Gantz ``http`` tool through the same SSRF guard as ``summarize_content``.

::

    result = await run_http(tool, {"city": "Oslo"}, emit=send_delta, environ=os.environ,
                            allow_private=False)
    # {"output": <body, or the extract_json value>, "status": 200}

- **request**: ``url``, header values and ``body`` are rendered from the
  parameters (``templates.py``: URL values percent-encoded, JSON bodies
  JSON-escaped, no line breaks in headers) and ``${VAR}``-expanded. A body
  without a ``Content-Type`` header is sent as ``application/json``, as
  gantz-cli does. The request goes through ``fetch.guarded_request``: every
  resolved address checked (private ones only with ``allow_private``, cloud
  metadata never), the checked address pinned, redirects re-checked, no proxy
  from the environment, the tool's timeout (else ``DEFAULT_TIMEOUT``) over the
  whole call.
- **output**: without ``extract_json`` the body is emitted as it arrives;
  with it, the body is read whole, the path followed (``jsonpath.py``) and the
  value emitted once. At most ``HTTP_TOOL_MAX_BYTES`` of body are read; more is
  ``output_too_large``. Nothing is trimmed (gantz-cli trims).
- **failure**: status >= 400 → ``tool_failed`` naming the status, with the
  body emitted and kept in ``result``; a missing ``extract_json`` path or a
  non-JSON body → ``tool_failed``; no connection → ``tool_unavailable``
  (transient, retried) for GET/HEAD when nothing was emitted yet, else
  ``tool_failed``; the time limit → ``timeout``; the guard's ``blocked_address``,
  ``invalid_url``, ``too_many_redirects`` as they are. Error messages name the
  URL as written in the file, never as expanded.
"""

from __future__ import annotations

import codecs
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import httpx

from mcp_tools.errors import (
    ExecutionTimeout,
    PermanentToolError,
    ToolError,
    TransientToolError,
)
from mcp_tools.fetch import PrivatePolicy, guarded_request

from . import conf
from .jsonpath import PathNotFound, as_output, extract, parse_json_path
from .model import SAFE_METHODS, GantzTool
from .templates import render_body, render_header, render_url

logger = logging.getLogger(__name__)

Emit = Callable[[str], None]
DEFAULT_HEADERS = {"User-Agent": "mcp-tools-gantz/1.0", "Accept-Encoding": "identity"}
GUARD_CODES = frozenset(
    {"invalid_url", "blocked_address", "too_many_redirects", "fetch_failed", "fetch_unavailable", "fetch_timeout"}
)


async def run_http(
    tool: GantzTool, parameters: dict[str, Any], *, emit: Emit, environ: Mapping[str, str], allow_private: PrivatePolicy
) -> dict[str, Any]:
    """Call ``tool``'s HTTP endpoint with ``parameters``; see the module docstring."""
    spec = tool.http
    if spec is None:
        raise ValueError(f"{tool.name} is not an http tool")
    arguments = tool.arguments(parameters)
    headers: dict[str, str | bytes] = {
        name: render_header(name, value, arguments, environ).encode()  # UTF-8; httpx sends ASCII only
        for name, value in spec.headers.items()
    }
    content = None
    if spec.body is not None:
        if not _has(headers, "Content-Type"):
            headers["Content-Type"] = "application/json"
        content_type = next(v for k, v in headers.items() if k.lower() == "content-type")
        content = render_body(spec.body, arguments, environ, _text(content_type)).encode()
    headers.update({k: v for k, v in DEFAULT_HEADERS.items() if not _has(headers, k)})
    call = _Call(tool, emit)
    try:
        async with guarded_request(
            spec.method,
            render_url(spec.url, arguments, environ),
            headers=headers,
            content=content,
            timeout_s=tool.timeout_s() or conf.default_timeout_s(),
            allow_private=allow_private,
        ) as landed:
            await call.read(landed.response)
    except ToolError as exc:
        if exc.code not in GUARD_CODES:
            raise
        raise call.translated(exc) from exc
    result = call.result()
    if call.status >= 400:
        raise PermanentToolError(
            f"Tool {tool.name!r}: {spec.url} answered HTTP {call.status}.", code="tool_failed", result=result
        )
    return result


class _Call:
    """One call's state: what was emitted and the status, for the result or an error."""

    def __init__(self, tool: GantzTool, emit: Emit) -> None:
        self.tool = tool
        self.emit = emit
        self.emitted: list[str] = []
        self.status = 0
        self.max_bytes = conf.http_max_bytes()

    def result(self) -> dict[str, Any]:
        return {"output": "".join(self.emitted), "status": self.status}

    def send(self, text: str) -> None:
        if text:
            self.emit(text)
            self.emitted.append(text)

    async def read(self, response: httpx.Response) -> None:
        self.status = response.status_code
        extract_json = self.tool.http.extract_json if self.tool.http else ""
        if extract_json and self.status < 400:
            self.send(self._extracted(await self._body(response), extract_json))
            return
        decoder = codecs.getincrementaldecoder(_charset(response))(errors="replace")
        async for chunk in self._chunks(response):
            self.send(decoder.decode(chunk))
        self.send(decoder.decode(b"", final=True))

    async def _chunks(self, response: httpx.Response) -> AsyncIterator[bytes]:
        received = 0
        async for chunk in response.aiter_bytes():
            received += len(chunk)
            if received > self.max_bytes:
                raise PermanentToolError(
                    f"Tool {self.tool.name!r}: the response is larger than {self.max_bytes} bytes.",
                    code="output_too_large",
                    result=self.result(),
                )
            yield chunk

    async def _body(self, response: httpx.Response) -> bytes:
        return b"".join([chunk async for chunk in self._chunks(response)])

    def _extracted(self, body: bytes, path: str) -> str:
        steps = parse_json_path(path)  # checked when the file was loaded
        try:
            document = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise self._failed("the response is not JSON") from exc
        try:
            return as_output(extract(document, steps))
        except PathNotFound as exc:
            raise self._failed(f"extract_json {path!r} is not in the response: {exc}") from exc

    def _failed(self, reason: str) -> PermanentToolError:
        return PermanentToolError(f"Tool {self.tool.name!r}: {reason}.", code="tool_failed", result=self.result())

    def translated(self, exc: ToolError) -> ToolError:
        """The guard's error, told about this tool and its URL as written."""
        name, spec = self.tool.name, self.tool.http
        url, method = (spec.url, spec.method) if spec else ("", "")
        result = self.result() if self.status else None
        if exc.code == "fetch_timeout":
            return ExecutionTimeout(f"Tool {name!r}: {url} did not answer in time.", result=result)
        if exc.code in ("fetch_unavailable", "fetch_failed"):
            message = f"Tool {name!r}: could not reach {url} ({exc.code.removeprefix('fetch_')})."
            if exc.code == "fetch_unavailable" and method in SAFE_METHODS and not self.emitted:
                return TransientToolError(message, code="tool_unavailable", result=result)
            return PermanentToolError(message, code="tool_failed", result=result)
        reasons = {
            "blocked_address": "its host is not a public address",
            "invalid_url": "it is not a valid http(s) URL",
            "too_many_redirects": "it redirected too many times",
        }
        return PermanentToolError(f"Tool {name!r}: refusing {url}: {reasons[exc.code]}.", code=exc.code, result=result)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _has(headers: Mapping[str, str | bytes], name: str) -> bool:
    return any(key.lower() == name.lower() for key in headers)


def _charset(response: httpx.Response) -> str:
    charset = response.charset_encoding or "utf-8"
    try:
        codecs.lookup(charset)
    except LookupError:
        return "utf-8"
    return charset
