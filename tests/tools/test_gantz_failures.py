"""Failures are clear: what a failing script or http tool looks like to a user, in both topologies."""

from __future__ import annotations

from tests.tools.service import stream_text, within_json

OUTPUT = "partial output\n\nsomething broke\n"  # stdout, then a newline and stderr, as Gantz joins them
MAX_OUTPUT_BYTES = 512 * 1024  # the default of both topologies, counted as JSON (6 bytes for an "é")


def failed(messages: list[dict]) -> dict:
    assert messages[-1]["type"] == "execution.failed", messages[-1]
    return messages[-1]


def test_a_non_zero_exit_fails_tool_failed_naming_the_code_and_keeps_the_output(service):
    messages = service.execute_ws("alice", "fail_with", {"code": 7})
    end = failed(messages)
    assert end["error"] == {"code": "tool_failed", "message": "Tool 'fail_with' exited with code 7."}
    assert end["result"] == {"output": OUTPUT, "exit_code": 7} and stream_text(messages) == OUTPUT
    with service.api("alice") as api:
        row = api.get(f"/api/executions/{end['execution_id']}/").json()
    assert (row["status"], row["error_code"], row["result"]) == ("failed", "tool_failed", end["result"])


def test_rest_execute_of_a_failing_script_answers_502_with_the_recorded_execution(service):
    with service.api("alice") as api:
        answer = api.post("/api/tools/fail_with/execute/", json={"parameters": {"code": 2}})
    assert answer.status_code == 502
    body = answer.json()
    assert body["error"] == {"code": "tool_failed", "message": "Tool 'fail_with' exited with code 2."}
    assert body["execution"]["result"] == {"output": OUTPUT, "exit_code": 2}


def test_a_missing_command_is_a_readable_tool_failed(service):
    end = failed(service.execute_ws("alice", "missing_command"))
    assert end["error"] == {
        "code": "tool_failed",
        "message": "Tool 'missing_command' cannot run: its command "
        "'no-such-command-for-tests' was not found on the PATH.",
    }


def test_an_http_status_of_400_or_more_fails_tool_failed_naming_it(service):
    for code in (404, 503):
        messages = service.execute_ws("alice", "http_status", {"code": code})
        end = failed(messages)
        assert end["error"] == {
            "code": "tool_failed",
            "message": f"Tool 'http_status': ${{TOOL_HTTP_URL}}/status/{{{{code}}}} answered HTTP {code}.",
        }
        assert end["result"] == {"output": f"status {code}", "status": code}
        assert stream_text(messages) == f"status {code}"


def test_an_unreachable_server_is_retried_as_tool_unavailable_then_fails(service):
    messages = service.execute_ws("alice", "http_down")
    end = failed(messages)
    assert (
        end["error"]["code"] == "tool_unavailable" and "could not reach http://127.0.0.1:1/" in end["error"]["message"]
    )
    retries = [m for m in messages if m["type"] == "execution.status" and m["status"] == "retrying"]
    assert [m["reason"] for m in retries] == ["tool_unavailable"] * 3 and end["attempt"] == 4


def test_output_past_the_cap_ends_output_too_large_with_everything_before_it_kept(service):
    messages = service.execute_ws("alice", "lines", {"n": 100_000})  # 1.2 MB
    end = failed(messages)
    kept = within_json("".join(f"line {i:06d}\n" for i in range(1, 100_001)), MAX_OUTPUT_BYTES)
    assert end["error"]["code"] == "output_too_large"
    assert stream_text(messages) == kept and end["result"] == {"output": kept}


def test_the_cap_counts_output_as_it_travels_so_the_last_event_always_reaches_the_client(service):
    """200,000 lines of "é" are 600 KB of UTF-8 but 1.6 MB of JSON: as one result, more than daphne sends in a
    WebSocket message. The cap stops them at 512 KiB of JSON, and that result reaches the client."""
    messages = service.execute_ws("alice", "accents", {"n": 200_000})
    end = failed(messages)
    assert end["error"]["code"] == "output_too_large" and end["result"] == {"output": "é\n" * 65_536}
    assert stream_text(messages) == "é\n" * 65_536


def test_an_http_tool_without_allow_private_reaches_loopback_only_where_the_setting_allows(service):
    messages = service.execute_ws("alice", "http_guarded")
    if service.topology == "production":  # the stack sets MCP_ALLOW_PRIVATE_URLS for its test pages
        assert messages[-1]["type"] == "execution.completed" and messages[-1]["result"]["status"] == 200
    else:
        assert failed(messages)["error"] == {
            "code": "blocked_address",
            "message": "Tool 'http_guarded': refusing ${TOOL_HTTP_URL}/items: its host is not a public address.",
        }
