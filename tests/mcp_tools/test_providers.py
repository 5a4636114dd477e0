"""The LLM providers, end to end.

``AnthropicProvider`` is driven through the real anthropic SDK against
``tests.fake_anthropic``, a real local HTTP server, so these tests cover the
SDK's own SSE parsing and error mapping as well as our translation of it into
``TransientToolError`` / ``PermanentToolError``. No database is needed.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anthropic
import pytest

from mcp_tools.errors import PermanentToolError, ToolError, TransientToolError
from mcp_tools.providers import (
    LLMRequest,
    LLMSettings,
    OfflineProvider,
    provider_from_settings,
)
from mcp_tools.providers.anthropic import AnthropicProvider
from mcp_tools.providers.offline import SUMMARY_HEADER, split_pieces
from tests.fake_anthropic import FakeAnthropic, fake_anthropic  # noqa: F401  (fixture)
from tests.stack import wait_until

API_KEY = "sk-ant-test-0123456789-SECRET"
MODEL = "claude-sonnet-5-5"
PROJECT_ROOT = Path(__file__).resolve().parents[2]

REQUEST = LLMRequest(
    kind="summarize", system="Be brief.", prompt="Summarize this short page please", max_tokens=200, material="A page."
)


def make_provider(url: str, *, timeout_s: float = 5.0) -> AnthropicProvider:
    return AnthropicProvider(api_key=API_KEY, base_url=url, model=MODEL, timeout_s=timeout_s)


MODEL_SETTING = "claude-sonnet-5-5"  # config/settings.py's default ANTHROPIC_MODEL


def collect(provider: Any, request: LLMRequest = REQUEST, *, limit: int | None = None) -> tuple[list[str], Any]:
    """Run one stream (to exhaustion, or ``limit`` pieces); return the pieces and the stream."""

    async def run() -> tuple[list[str], Any]:
        pieces: list[str] = []
        async with provider.stream(request) as stream:
            async for piece in stream:
                pieces.append(piece)
                if limit is not None and len(pieces) == limit:
                    break
        return pieces, stream

    return asyncio.run(run())


def failure(provider: Any, received: list[str] | None = None) -> ToolError:
    """Run one stream that must fail; return the translated error."""

    async def run() -> None:
        async with provider.stream(REQUEST) as stream:
            async for piece in stream:
                if received is not None:
                    received.append(piece)

    with pytest.raises(ToolError) as caught:
        asyncio.run(run())
    return caught.value


# -- AnthropicProvider: success ---------------------------------------------------


def test_streamed_pieces_join_to_the_text_the_server_sent(fake_anthropic: FakeAnthropic) -> None:
    text = "Claude says: streaming works, piece by piece."
    fake_anthropic.set_default({"text": text, "piece_chars": 5})

    pieces, _ = collect(make_provider(fake_anthropic.url))

    assert "".join(pieces) == text
    assert pieces[0] == "Claude"[:5]
    assert len(pieces) == -(-len(text) // 5)


def test_usage_reports_input_tokens_from_start_and_cumulative_output_tokens(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.set_default({"tokens": 7})

    pieces, stream = collect(make_provider(fake_anthropic.url))

    assert pieces == [f"w{i} " for i in range(7)]
    assert stream.usage.input_tokens == len(REQUEST.prompt.split())
    assert stream.usage.output_tokens == 7


def test_model_is_reported_from_the_response_and_request_is_well_formed(fake_anthropic: FakeAnthropic) -> None:
    _, stream = collect(make_provider(fake_anthropic.url))

    assert stream.model == MODEL
    [received] = fake_anthropic.requests
    assert received["model"] == MODEL
    assert received["auth"] in ("bearer", "x-api-key")
    assert received["body"]["stream"] is True
    assert received["body"]["system"] == REQUEST.system
    assert received["body"]["max_tokens"] == REQUEST.max_tokens
    assert received["body"]["messages"] == [{"role": "user", "content": REQUEST.prompt}]


def test_sdk_does_not_retry_silently(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.set_script([{"status": 529}])

    failure(make_provider(fake_anthropic.url))

    assert len(fake_anthropic.requests) == 1


def test_stall_shorter_than_the_timeout_still_completes(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.set_default({"tokens": 4, "stall_after": 2, "stall_s": 0.1})

    pieces, stream = collect(make_provider(fake_anthropic.url, timeout_s=5.0))

    assert "".join(pieces) == "w0 w1 w2 w3 "
    assert stream.usage.output_tokens == 4


def test_a_held_stream_outlives_the_read_timeout_on_pings_and_goes_on_when_released(
    fake_anthropic: FakeAnthropic,
) -> None:
    fake_anthropic.set_default({"tokens": 4, "hold_after": 2, "ping_s": 0.05})
    with ThreadPoolExecutor(max_workers=1) as pool:
        streaming = pool.submit(collect, make_provider(fake_anthropic.url, timeout_s=0.5))
        try:
            # Held for twice the read timeout, pings alone on the wire: the SDK ignores them and keeps waiting.
            wait_until(
                lambda: any(r.get("pings", 0) >= 20 for r in fake_anthropic.requests), timeout=10, what="20 pings"
            )
            assert not streaming.done()
        finally:
            fake_anthropic.release()
        pieces, stream = streaming.result(timeout=10)

    assert "".join(pieces) == "w0 w1 w2 w3 "
    assert stream.usage.output_tokens == 4
    assert fake_anthropic.requests[0]["holding"] is False and len(fake_anthropic.requests) == 1


# -- AnthropicProvider: errors when the stream opens -----------------------------


def test_rate_limit_429_is_transient_with_retry_after(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.set_script([{"status": 429, "retry_after": 7}])

    error = failure(make_provider(fake_anthropic.url))

    assert isinstance(error, TransientToolError)
    assert error.code == "llm_rate_limited"
    assert error.retry_after == 7.0


def test_overloaded_529_is_transient_overloaded(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.set_script([{"status": 529}])

    error = failure(make_provider(fake_anthropic.url))

    assert isinstance(error, TransientToolError)
    assert error.code == "llm_overloaded"
    assert error.retry_after is None


def test_server_error_500_is_transient_unavailable(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.set_script([{"status": 503, "error_type": "api_error", "retry_after": "2.5"}])

    error = failure(make_provider(fake_anthropic.url))

    assert isinstance(error, TransientToolError)
    assert (error.code, error.retry_after) == ("llm_unavailable", 2.5)


def test_bad_request_400_is_permanent_llm_error(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.set_script([{"status": 400, "error_message": "max_tokens: too large"}])

    error = failure(make_provider(fake_anthropic.url))

    assert isinstance(error, PermanentToolError)
    assert error.code == "llm_error"
    assert "max_tokens: too large" in error.message


def test_unauthorized_401_is_permanent_auth_failed(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.set_script([{"status": 401}])

    error = failure(make_provider(fake_anthropic.url))

    assert isinstance(error, PermanentToolError)
    assert error.code == "llm_auth_failed"


def test_wrong_api_key_is_rejected_by_the_server_as_auth_failed() -> None:
    with FakeAnthropic(api_key="sk-the-right-key") as server:
        error = failure(make_provider(server.url))

    assert isinstance(error, PermanentToolError)
    assert error.code == "llm_auth_failed"


def test_unreachable_server_is_transient_stream_interrupted() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nobody listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    error = failure(make_provider(f"http://127.0.0.1:{port}"))

    assert isinstance(error, TransientToolError)
    assert error.code == "llm_stream_interrupted"


# -- AnthropicProvider: errors while streaming -----------------------------------


def test_mid_stream_overloaded_error_is_transient_after_partial_text(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.set_script([{"tokens": 10, "error_after": 3, "error_type": "overloaded_error"}])
    received: list[str] = []

    error = failure(make_provider(fake_anthropic.url), received)

    assert received == ["w0 ", "w1 ", "w2 "]
    assert isinstance(error, TransientToolError)
    assert error.code == "llm_overloaded"


def test_mid_stream_invalid_request_error_is_permanent(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.set_script([{"error_after": 1, "error_type": "invalid_request_error"}])

    error = failure(make_provider(fake_anthropic.url))

    assert isinstance(error, PermanentToolError)
    assert error.code == "llm_error"


def test_an_event_that_is_not_json_is_a_permanent_error_after_the_text_before_it(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.set_script([{"tokens": 5, "garbled_after": 2}])
    received: list[str] = []

    error = failure(make_provider(fake_anthropic.url), received)

    assert received == ["w0 ", "w1 "]
    assert isinstance(error, PermanentToolError)
    assert (error.code, error.message) == ("llm_error", "Claude returned a response that could not be understood.")


def test_dropped_connection_is_transient_stream_interrupted(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.set_script([{"tokens": 10, "drop_after": 4}])
    received: list[str] = []

    error = failure(make_provider(fake_anthropic.url), received)

    assert len(received) == 4
    assert isinstance(error, TransientToolError)
    assert error.code == "llm_stream_interrupted"


def test_stall_longer_than_timeout_is_transient_and_the_client_hangs_up(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.set_script([{"tokens": 10, "stall_after": 2, "stall_s": 30}])

    error = failure(make_provider(fake_anthropic.url, timeout_s=0.3))

    assert isinstance(error, TransientToolError)
    assert error.code == "llm_stream_interrupted"
    [handled] = fake_anthropic.wait_for_requests(1)
    assert handled["pieces_sent"] == 2
    assert handled["disconnected_early"] is True


def test_leaving_the_context_early_closes_the_http_stream(fake_anthropic: FakeAnthropic) -> None:
    # Paced pieces, so the server is still writing when the client walks away.
    fake_anthropic.set_script([{"tokens": 500, "delay_ms": 10}])

    first, _ = collect(make_provider(fake_anthropic.url), limit=3)

    assert first == ["w0 ", "w1 ", "w2 "]
    [handled] = fake_anthropic.wait_for_requests(1)
    assert handled["disconnected_early"] is True
    assert handled["pieces_sent"] < 500


def test_completed_stream_is_not_reported_as_an_early_disconnect(fake_anthropic: FakeAnthropic) -> None:
    collect(make_provider(fake_anthropic.url))

    [handled] = fake_anthropic.wait_for_requests(1)
    assert (handled["disconnected_early"], handled["pieces_sent"]) == (False, 20)


@pytest.mark.parametrize(
    "behavior",
    [
        {"status": 400, "error_message": f"bad key {API_KEY}"},
        {"status": 401, "error_message": f"invalid x-api-key {API_KEY}"},
        {"status": 429, "error_message": f"slow down {API_KEY}", "retry_after": 1},
        {"status": 529},
        {"error_after": 2, "error_message": f"overloaded for {API_KEY}"},
        {"error_after": 2, "error_type": "permission_error", "error_message": API_KEY},
        {"drop_after": 2},
    ],
)
def test_error_messages_never_contain_the_api_key(fake_anthropic: FakeAnthropic, behavior: dict[str, Any]) -> None:
    fake_anthropic.set_script([behavior])

    error = failure(make_provider(fake_anthropic.url))

    assert API_KEY not in error.message
    assert API_KEY not in str(error)
    assert API_KEY not in json.dumps(error.as_dict())
    assert len(error.message) < 300


def test_provider_repr_hides_the_api_key(fake_anthropic: FakeAnthropic) -> None:
    assert API_KEY not in repr(make_provider(fake_anthropic.url))


# -- the fake server itself --------------------------------------------------------


def test_fake_server_answers_non_streaming_requests_with_json(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.set_default({"text": "plain answer"})
    client = anthropic.Anthropic(api_key=API_KEY, base_url=fake_anthropic.url, max_retries=0)

    message = client.messages.create(model=MODEL, max_tokens=50, messages=[{"role": "user", "content": "two words"}])

    assert message.content[0].text == "plain answer"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (2, 3)


def test_fake_server_rejects_requests_without_credentials(fake_anthropic: FakeAnthropic) -> None:
    request = urllib.request.Request(
        f"{fake_anthropic.url}/v1/messages",
        method="POST",
        data=b'{"model": "m", "messages": []}',
        headers={"content-type": "application/json"},
    )

    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)

    assert caught.value.code == 401
    assert json.loads(caught.value.read())["error"]["type"] == "authentication_error"


@pytest.fixture
def fake_subprocess() -> Iterator[str]:
    """``python -m tests.fake_anthropic`` in its own process; yields its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_anthropic", "--port", "0"],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until the server is listening
        assert line.startswith("listening on "), line
        yield line.removeprefix("listening on ").strip()
    finally:
        process.terminate()
        process.wait(timeout=10)


def control(url: str, path: str, payload: Any = None) -> Any:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(
        f"{url}{path}",
        data=data,
        method="GET" if data is None else "POST",
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_fake_server_subprocess_is_controlled_over_http(fake_subprocess: str) -> None:
    control(fake_subprocess, "/_control/script", [{"status": 429, "retry_after": 3}])
    control(fake_subprocess, "/_control/default", {"text": "from the default"})
    error = failure(make_provider(fake_subprocess))
    pieces, _ = collect(make_provider(fake_subprocess))  # one SDK client per event loop, as the engine keeps them

    assert (error.code, error.retry_after) == ("llm_rate_limited", 3.0)
    assert "".join(pieces) == "from the default"
    handled = control(fake_subprocess, "/_control/requests?wait=2")
    assert [r["model"] for r in handled] == [MODEL, MODEL]
    control(fake_subprocess, "/_control/reset", {})
    assert control(fake_subprocess, "/_control/requests") == []


# -- OfflineProvider ---------------------------------------------------------------

PAGE = (
    "Django Channels extends Django to handle WebSockets. It runs on ASGI servers such as "
    "daphne. Consumers are the equivalent of views! Do they share state? Not by default. "
    + "Filler sentence number beyond the limit. "
    * 30
)

REPORT_DATA = {
    "city": "Oslo",
    "population": 709037,
    "temperatures": [3, -1.5, 7, 11.5],
    "tags": ["nordic", "capital"],
    "mayor": {"name": "A. B.", "party": "X"},
    "coastal": True,
    "notes": None,
}


def offline_request(kind: str, material: Any) -> LLMRequest:
    return LLMRequest(
        kind=kind,  # type: ignore[arg-type]
        system="",
        prompt="please do the thing",
        max_tokens=500,
        material=material,
    )


def test_offline_is_deterministic() -> None:
    request = offline_request("report", REPORT_DATA)

    first, _ = collect(OfflineProvider(), request)
    second, _ = collect(OfflineProvider(), request)

    assert first == second


def test_offline_pieces_join_to_the_text_and_usage_counts_words_and_pieces() -> None:
    pieces, stream = collect(OfflineProvider(), offline_request("summarize", PAGE))

    text = "".join(pieces)
    assert pieces == split_pieces(text)
    assert stream.model == "offline"
    assert stream.usage.input_tokens == 4
    assert stream.usage.output_tokens == len(pieces)


def test_offline_summary_is_an_honest_extract_of_the_first_sentences() -> None:
    pieces, _ = collect(OfflineProvider(), offline_request("summarize", PAGE))

    header, _, extract = "".join(pieces).partition("\n\n")
    assert header == SUMMARY_HEADER
    assert extract.startswith("Django Channels extends Django to handle WebSockets. It runs on ASGI")
    assert "Not by default." in extract
    assert len(extract.split()) <= 80


def test_offline_summary_of_an_empty_page_says_so() -> None:
    pieces, _ = collect(OfflineProvider(), offline_request("summarize", "   "))

    assert "no text to summarize" in "".join(pieces)


def test_offline_report_contains_facts_computed_from_the_data() -> None:
    pieces, _ = collect(OfflineProvider(), offline_request("report", REPORT_DATA))
    report = "".join(pieces)

    assert report.startswith("# ")
    assert "7 fields" in report
    assert "**population** (number): 709037" in report
    assert "**temperatures** (list of 4 numbers): min -1.5, max 11.5, mean 5" in report
    assert "**tags** (list, 2 items of string)" in report
    assert "**mayor** (object, 2 keys): name, party" in report
    assert "**coastal** (boolean): true" in report
    assert "**notes** (null)" in report
    assert "offline" in report.lower()


def test_offline_report_of_a_bare_list_reports_it_as_one_field() -> None:
    pieces, _ = collect(OfflineProvider(), offline_request("report", [1, 2, 3, 4]))

    assert "(list of 4 numbers): min 1, max 4, mean 2.5" in "".join(pieces)


def test_offline_leaving_early_stops_counting_output() -> None:
    first, stream = collect(OfflineProvider(), offline_request("report", REPORT_DATA), limit=3)

    assert len(first) == 3
    assert stream.usage.output_tokens == 3


# -- choosing a provider -------------------------------------------------------------


def test_auto_chooses_offline_without_a_key() -> None:
    assert isinstance(
        provider_from_settings(
            LLMSettings(provider="auto", api_key="", base_url=None, model=MODEL_SETTING, timeout_s=5)
        ),
        OfflineProvider,
    )


def test_auto_chooses_anthropic_with_a_key_and_reuses_its_client(fake_anthropic: FakeAnthropic) -> None:
    settings = LLMSettings(
        provider="auto", api_key=API_KEY, base_url=fake_anthropic.url, model=MODEL_SETTING, timeout_s=5
    )

    provider = provider_from_settings(settings)

    assert isinstance(provider, AnthropicProvider)
    assert provider.model == MODEL_SETTING
    assert provider_from_settings(settings) is provider
    assert "".join(collect(provider)[0]) == "".join(f"w{i} " for i in range(20))


def test_default_model_is_not_deprecated_by_the_sdk() -> None:
    from anthropic._data import DEPRECATED_MODELS
    from django.conf import settings

    assert settings.ANTHROPIC_MODEL == MODEL_SETTING  # nothing in the environment overrides it here
    assert MODEL_SETTING not in DEPRECATED_MODELS
    assert "sonnet" in MODEL_SETTING
