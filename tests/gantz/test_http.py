"""run_http against a real HTTP server on 127.0.0.1: substitution, streaming,
extract_json, failures, and the SSRF guard it shares with summarize_content."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler

import pytest

from mcp_tools.errors import ExecutionTimeout, PermanentToolError, TransientToolError
from mcp_tools.gantz import run_http

from .conftest import Recorder, Reply

PARAMETERS = [{"name": "q"}, {"name": "n", "type": "integer"}, {"name": "token"}]


def http_tool(gantz_tool, url: str, **http: object):
    """A tool calling ``url``; ``http`` holds more keys of its ``http`` block."""
    return gantz_tool(
        json.dumps(  # JSON is YAML
            {"tools": [{"name": "web", "parameters": PARAMETERS, "http": {"url": url, **http}}]}
        )
    )


async def call(tool, parameters=None, *, emit=None, environ=None, allow_private=True):
    return await run_http(
        tool, parameters or {}, emit=emit or Recorder(), environ=environ or {}, allow_private=allow_private
    )


async def test_get_substitutes_percent_encoded_values_and_returns_body_and_status(gantz_tool, http_server, emit):
    http_server.routes["/search/a%20b%3F%26x"] = Reply(body="trouvé".encode())
    tool = http_tool(gantz_tool, http_server.url("/search/{{q}}?q={{q}}&n={{n}}"))

    result = await call(tool, {"q": "a b?&x", "n": 5}, emit=emit)

    assert result == {"output": "trouvé", "status": 200}
    assert emit.text == "trouvé"
    (request,) = http_server.calls
    assert (request.method, request.path) == ("GET", "/search/a%20b%3F%26x?q=a%20b%3F%26x&n=5")


async def test_the_body_is_emitted_as_it_arrives(gantz_tool, http_server):
    first_seen = threading.Event()

    def two_parts(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/plain; charset=utf-8")
        handler.send_header("Content-Length", "12")
        handler.end_headers()
        handler.wfile.write(b"first,")
        handler.wfile.flush()
        if first_seen.wait(timeout=30):  # only once the client emitted the first part
            handler.wfile.write(b"second")

    http_server.routes["/stream"] = two_parts
    emit = Recorder(lambda text: first_seen.set() if "first" in text else None)

    result = await call(http_tool(gantz_tool, http_server.url("/stream")), emit=emit)

    assert emit.pieces == ["first,", "second"]
    assert result == {"output": "first,second", "status": 200}


@pytest.mark.parametrize("value", ['x", "admin": true, "y": "', 'quote " and \\ and \n', "é🙂"])
async def test_a_json_body_carries_values_as_json_and_cannot_change_its_shape(gantz_tool, http_server, value):
    http_server.routes["/items"] = Reply(201, b'{"ok": true}', "application/json")
    tool = http_tool(
        gantz_tool,
        http_server.url("/items"),
        method="post",
        body='{"q": "{{q}}", "n": {{n}}, "missing": {{token}}}',
        headers={"X-Api-Key": "${API_KEY}", "X-Query": "fixed"},
    )

    result = await call(tool, {"q": value, "n": 3}, environ={"API_KEY": "k-123"})

    assert result == {"output": '{"ok": true}', "status": 201}
    (request,) = http_server.calls
    assert request.method == "POST"
    assert json.loads(request.body) == {"q": value, "n": 3, "missing": None}
    assert request.headers["Content-Type"] == "application/json"  # gantz-cli's default
    assert (request.headers["X-Api-Key"], request.headers["X-Query"]) == ("k-123", "fixed")


async def test_a_form_body_is_form_encoded(gantz_tool, http_server):
    http_server.routes["/form"] = Reply(body=b"ok")
    tool = http_tool(
        gantz_tool,
        http_server.url("/form"),
        method="POST",
        body="q={{q}}&n={{n}}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    await call(tool, {"q": "a&n=99 b", "n": 1})

    assert http_server.calls[0].body == b"q=a%26n%3D99+b&n=1"


async def test_header_values_are_sent_as_utf8(gantz_tool, http_server):
    http_server.routes["/x"] = Reply(body=b"ok")
    tool = http_tool(gantz_tool, http_server.url("/x"), headers={"X-City": "{{q}}"})

    await call(tool, {"q": "São Paulo 🙂"})

    raw = http_server.calls[0].headers["X-City"].encode("latin-1")  # http.server reads latin-1
    assert raw.decode("utf-8") == "São Paulo 🙂"


async def test_a_line_break_in_a_header_value_is_refused_before_connecting(gantz_tool, http_server):
    tool = http_tool(gantz_tool, http_server.url("/x"), headers={"X-Token": "{{token}}"})

    with pytest.raises(PermanentToolError) as caught:
        await call(tool, {"token": "abc\r\nX-Admin: yes"})

    assert caught.value.code == "invalid_parameters"
    assert http_server.connections == 0


@pytest.mark.parametrize(
    ("path", "output"),
    [
        ("items[0].name", "first"),
        ("items[1].price", "21.5"),
        ("meta", '{\n  "page": 1\n}'),
        ("items[0].tags", '[\n  "a",\n  "b"\n]'),
        ("flag", "true"),
        ("nothing", "null"),
    ],
)
async def test_extract_json_returns_a_string_as_is_and_other_values_as_json(
    gantz_tool, http_server, emit, path, output
):
    document = {
        "items": [{"name": "first", "tags": ["a", "b"]}, {"price": 21.5}],
        "meta": {"page": 1},
        "flag": True,
        "nothing": None,
    }
    http_server.routes["/data"] = Reply(body=json.dumps(document).encode(), content_type="application/json")
    tool = http_tool(gantz_tool, http_server.url("/data"), extract_json=path)

    result = await call(tool, emit=emit)

    assert result == {"output": output, "status": 200}
    assert emit.pieces == [output]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"items": []}', "extract_json 'items[0].name' is not in the response: items has 0 items, no [0]"),
        (b'{"items": {"0": 1}}', "extract_json 'items[0].name' is not in the response: items is not an array"),
        (b"<html>not json</html>", "the response is not JSON"),
    ],
)
async def test_extract_json_that_finds_nothing_fails_the_tool(gantz_tool, http_server, body, reason):
    http_server.routes["/data"] = Reply(body=body, content_type="application/json")
    tool = http_tool(gantz_tool, http_server.url("/data"), extract_json="items[0].name")

    with pytest.raises(PermanentToolError) as caught:
        await call(tool)

    assert (caught.value.code, caught.value.message) == ("tool_failed", f"Tool 'web': {reason}.")
    assert caught.value.result == {"output": "", "status": 200}


async def test_status_400_and_above_fails_naming_it_with_the_body_emitted_and_kept(gantz_tool, http_server, emit):
    http_server.routes["/missing"] = Reply(404, b'{"error": "no such city"}', "application/json")
    tool = http_tool(gantz_tool, http_server.url("/missing"), extract_json="data.temp")

    with pytest.raises(PermanentToolError) as caught:
        await call(tool, emit=emit)

    assert caught.value.code == "tool_failed"
    assert "HTTP 404" in caught.value.message
    assert caught.value.result == {"output": '{"error": "no such city"}', "status": 404}
    assert emit.text == caught.value.result["output"]


async def test_a_body_that_cannot_be_decoded_fails_the_tool(gantz_tool, http_server):
    http_server.routes["/gz"] = Reply(body=b"not gzip", headers={"Content-Encoding": "gzip"})

    with pytest.raises(PermanentToolError) as caught:
        await call(http_tool(gantz_tool, http_server.url("/gz")))

    assert caught.value.code == "tool_failed"


async def test_head_returns_the_status_and_no_output(gantz_tool, http_server):
    http_server.routes["/ping"] = Reply(body=b"ignored")

    result = await call(http_tool(gantz_tool, http_server.url("/ping"), method="HEAD"))

    assert result == {"output": "", "status": 200}


async def test_private_addresses_are_refused_unless_allowed(gantz_tool, http_server):
    http_server.routes["/internal"] = Reply(body=b"internal secret")
    tool = http_tool(gantz_tool, "http://${INTERNAL}/internal")
    environ = {"INTERNAL": f"127.0.0.1:{http_server.server_address[1]}"}

    with pytest.raises(PermanentToolError) as caught:
        await call(tool, environ=environ, allow_private=False)

    assert caught.value.code == "blocked_address"
    assert http_server.connections == 0
    assert "${INTERNAL}" in caught.value.message and "127.0.0.1" not in caught.value.message
    assert (await call(tool, environ=environ, allow_private=True))["output"] == "internal secret"


async def test_cloud_metadata_is_refused_even_when_private_addresses_are_allowed(gantz_tool):
    tool = http_tool(gantz_tool, "http://169.254.169.254/latest/meta-data/{{q}}")

    with pytest.raises(PermanentToolError) as caught:
        await call(tool, {"q": "iam"}, allow_private=True)

    assert caught.value.code == "blocked_address"


@pytest.mark.parametrize(
    ("method", "error", "code"),
    [
        ("GET", TransientToolError, "tool_unavailable"),
        ("HEAD", TransientToolError, "tool_unavailable"),
        ("POST", PermanentToolError, "tool_failed"),
        ("DELETE", PermanentToolError, "tool_failed"),
    ],
)
async def test_no_connection_is_retryable_only_for_safe_methods(gantz_tool, method, error, code):
    with socket.socket() as bound_not_listening:
        bound_not_listening.bind(("127.0.0.1", 0))
        port = bound_not_listening.getsockname()[1]
        tool = http_tool(gantz_tool, f"http://127.0.0.1:{port}/", method=method)

        with pytest.raises(error) as caught:
            await call(tool)

    assert type(caught.value) is error
    assert caught.value.code == code


async def test_the_tools_timeout_bounds_the_call(gantz_tool, http_server):
    def stall(handler: BaseHTTPRequestHandler) -> None:
        handler.server.release.wait(timeout=30)

    http_server.routes["/slow"] = stall
    tool = http_tool(gantz_tool, http_server.url("/slow"), timeout="300ms")

    with pytest.raises(ExecutionTimeout) as caught:
        await call(tool)

    assert caught.value.code == "timeout"


async def test_a_body_over_the_cap_ends_the_call_keeping_what_was_emitted(gantz_tool, http_server, settings, emit):
    settings.MCP_CONFIG = {**settings.MCP_CONFIG, "HTTP_TOOL_MAX_BYTES": 1000}
    http_server.routes["/big"] = Reply(body=b"x" * 100_000)

    with pytest.raises(PermanentToolError) as caught:
        await call(http_tool(gantz_tool, http_server.url("/big")), emit=emit)

    assert caught.value.code == "output_too_large"
    assert len(caught.value.result["output"]) <= 1000
    assert caught.value.result["output"] == emit.text


async def test_an_exception_from_emit_propagates_unchanged(gantz_tool, http_server):
    http_server.routes["/page"] = Reply(body=b"some text")
    stop = PermanentToolError("over the cap", code="output_too_large")

    def refuse(_text: str) -> None:
        raise stop

    with pytest.raises(PermanentToolError) as caught:
        await call(http_tool(gantz_tool, http_server.url("/page")), emit=Recorder(refuse))

    assert caught.value is stop
