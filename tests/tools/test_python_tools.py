"""Python tools from any installed app: ``tests.tool_app``'s ``tools.py``, found, listed and run everywhere.

The service tests run in both topologies (``conftest.py``): in production the
app reaches daphne and the workers through ``MCP_EXTRA_APPS`` and
``ctx.generate`` talks to the fake Messages API through the real SDK; in the
embedded default the offline provider answers.
"""

from __future__ import annotations

import json

import anyio

from mcp_tools.tools.registry import all_tools
from tests.api.conftest import parse_sse
from tests.mcp.helpers import Progress, http_session
from tests.tools.service import stream_text, structured, write_line

APP_TOOLS = {"count_to", "word_stats", "poem"}


def completed(messages: list[dict]) -> dict:
    assert messages[-1]["type"] == "execution.completed", messages[-1]
    return messages[-1]


def test_the_schemas_come_from_the_type_hints(test_tools_installed):
    tools = all_tools()
    count_to = tools["count_to"]
    assert count_to.kind == "python" and count_to.description == "Count from 1 to n, one line at a time"
    assert count_to.parameters_schema == {
        "type": "object",
        "additionalProperties": False,
        "required": [],
        "properties": {
            "n": {"type": "integer", "minimum": 1, "maximum": 100_000, "default": 3, "description": "Where to stop"},
            "gate": {
                "type": "string",
                "default": "",
                "description": "A FIFO to read a line from after the first number",
            },
        },
    }
    assert count_to.output_schema == {
        "type": "object",
        "required": ["count", "last", "output"],
        "properties": {
            "count": {"type": "integer"},
            "last": {"type": "integer"},
            "output": {"type": "string", "description": "The streamed output, joined."},
        },
    }
    assert tools["poem"].output_field == "poem" and tools["poem"].output_schema["required"] == [
        "poem",
        "topic",
        "model",
    ]
    assert tools["word_stats"].parameters_schema["properties"]["text"] == {"type": "string", "minLength": 1}


def test_the_apps_tools_are_listed_on_every_transport(service):
    with service.api("alice") as api:
        rest = {tool["name"]: tool for tool in api.get("/api/tools/", params={"page_size": 100}).json()["results"]}
    with service.ws("alice") as ws:
        ws.send({"type": "list_tools"})
        ws_tools = {tool["name"]: tool for tool in ws.recv()["tools"]}

    async def mcp_list():
        async with http_session(service.http_url + "/mcp", service.tokens["alice"]) as session:
            return {tool.name: tool for tool in (await session.list_tools()).tools}

    mcp = anyio.run(mcp_list)
    assert set(rest) >= APP_TOOLS and set(ws_tools) >= APP_TOOLS and set(mcp) >= APP_TOOLS
    for name in APP_TOOLS:
        assert rest[name]["parameters_schema"] == ws_tools[name]["parameters_schema"] == mcp[name].input_schema
    assert rest["count_to"]["parameters_schema"]["properties"]["n"]["maximum"] == 100_000


def test_an_async_tool_streams_while_it_runs(service, fifo):
    with service.ws("alice") as ws:
        ws.send({"type": "execute", "tool": "count_to", "parameters": {"n": 4, "gate": str(fifo)}})
        first = ws.until(lambda m: m["type"] == "execution.delta")
        assert first[-1]["text"] == "1\n"  # before the gate opens, so while the tool still runs
        write_line(fifo, "(the gate opened)")
        messages = first + ws.until_terminal()
    result = completed(messages)["result"]
    assert result == {"count": 4, "last": 4, "output": "1\n(the gate opened)\n2\n3\n4\n"}
    assert stream_text(messages) == result["output"]


def test_a_plain_def_tool_runs_in_the_thread_pool_over_rest(service):
    with service.api("alice") as api:
        answer = api.post("/api/tools/word_stats/execute/", json={"parameters": {"text": "a tiny example"}})
        refused = api.post("/api/tools/word_stats/execute/", json={"parameters": {"text": ""}})
    assert answer.status_code == 200, answer.text
    assert answer.json()["result"] == {"words": 3, "longest": "example", "output": "a\ntiny\nexample\n"}
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_parameters"
    assert refused.json()["error"]["details"][0]["field"] == "text"


def test_a_tool_that_asks_the_llm_streams_its_answer(service):
    messages = service.execute_ws("alice", "poem", {"topic": "tides"})
    result = completed(messages)["result"]
    assert set(result) == {"poem", "topic", "model"} and result["topic"] == "tides"
    assert stream_text(messages) == result["poem"]
    if service.topology == "production":  # the fake Messages API, through the anthropic SDK
        assert result["poem"] == "".join(f"w{i} " for i in range(20)) and result["model"]
    else:
        assert result["model"] == "offline" and "Write a four-line poem about tides." in result["poem"]
    assert messages[-1]["usage"]["output_tokens"] > 0


def test_the_apps_tools_run_over_sse_mcp_and_run_tool(service):
    progress = Progress()

    async def by_mcp():
        async with http_session(service.http_url + "/mcp", service.tokens["alice"]) as session:
            return await session.call_tool("count_to", {"n": 5}, progress_callback=progress)

    called = anyio.run(by_mcp)
    with service.api("alice") as api:
        queued = api.post("/api/tools/poem/execute_async/", json={"parameters": {"topic": "rain"}}).json()
        events = [e["data"] for e in parse_sse(api.get(f"/api/executions/{queued['execution_id']}/events/").text)[0]]
    cli = service.run_tool("word_stats", "--param", "text=from the command line")
    assert structured(called) == {"count": 5, "last": 5, "output": "1\n2\n3\n4\n5\n"}
    assert progress.updates and progress.updates[-1][1] == "1\n2\n3\n4\n5\n"
    assert completed(events)["result"]["topic"] == "rain" and stream_text(events) == events[-1]["result"]["poem"]
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout) == {"words": 4, "longest": "command", "output": "from\nthe\ncommand\nline\n"}


def test_cancelling_a_python_tool_stops_it(service, fifo):
    with service.ws("alice") as ws:
        ws.send({"type": "execute", "tool": "count_to", "parameters": {"n": 3, "gate": str(fifo)}})
        execution_id = ws.recv()["execution_id"]
        ws.until(lambda m: m["type"] == "execution.delta")
        ws.send({"type": "cancel", "execution_id": execution_id})
        end = ws.until_terminal()
        write_line(fifo, "too late")  # frees the thread that still reads the FIFO
    assert end[-1]["type"] == "execution.cancelled"
    with service.api("alice") as api:
        assert api.get(f"/api/executions/{execution_id}/").json()["status"] == "cancelled"
