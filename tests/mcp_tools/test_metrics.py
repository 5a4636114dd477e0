"""``/metrics`` on the embedded default: a known workload counted exactly, who may read it, bounded labels.

Driven through ``config.asgi.application`` (the WebSocket consumer, the event
stream, the REST API and the embedded worker of this process). The registry
lives as long as the test process, so every assertion is about what one
workload added between two scrapes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from prometheus_client import REGISTRY

from mcp_tools import delivery, services
from mcp_tools.errors import RateLimited
from mcp_tools.metrics import labels
from mcp_tools.models import Tool, ToolExecution
from mcp_tools.providers import LLMSettings
from mcp_tools.results_cache import result_cache_lookup
from tests.api.conftest import asgi_http, parse_sse, token_headers, wait_for  # noqa: F401  (fixture)
from tests.conftest import receive_until_terminal, run_now, send
from tests.mcp_tools.scrape import Scrape, deltas, grown
from tests.stack import ROOT

REPORT = {"data": {"sales": [3, 5, 8]}}
# Not fetchable: summarize_content fails with invalid_url, and a message quoting this address.
PRIVATE_URL = "ftp://files.example/alice-private-notes"
SCRAPER_TOKEN = "scraper-" + "s" * 40


async def scrape(client, user) -> Scrape:
    response = await client.get("/metrics", headers=token_headers(user))
    assert response.status_code == 200, response.text
    return Scrape.parse(response.text)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("worker")
async def test_a_known_workload_is_counted_exactly(tools, alice, bob, staff, connect, asgi_http, settings):
    before = await scrape(asgi_http, staff)
    ws = await connect(alice)
    assert grown(await scrape(asgi_http, staff), before, "mcp_tools_connections", transport="websocket") == 1

    # A run over the WebSocket, then the same request answered from the cache.
    await send(ws, {"type": "execute", "tool": "generate_report", "parameters": REPORT, "request_id": "run"})
    ran = await receive_until_terminal(ws)
    assert ran[-1]["type"] == "execution.completed"
    run = await ToolExecution.objects.aget(pk=ran[0]["execution_id"])
    await wait_for(
        lambda: sync_to_async(result_cache_lookup)("generate_report", run.parameters), what="the result in the cache"
    )
    await send(ws, {"type": "execute", "tool": "generate_report", "parameters": REPORT, "request_id": "cached"})
    answered = await receive_until_terminal(ws)
    assert answered[-1]["cached"] is True

    # A failure over REST; one cancelled before any worker took it.
    failed = await asgi_http.post(
        "/api/tools/summarize_content/execute/", json={"parameters": {"url": PRIVATE_URL}}, headers=token_headers(alice)
    )
    assert failed.json()["error"]["code"] == "invalid_url"
    waiting = await sync_to_async(services.execution_prepare)(
        user=alice, tool_name="generate_report", parameters=REPORT
    )
    await sync_to_async(services.execution_cancel)(user=alice, execution_id=waiting.pk)

    # Each per-user limit refuses once.
    blocker = await sync_to_async(services.execution_prepare)(user=bob, tool_name="generate_report", parameters=REPORT)
    for limit in ({"MAX_CONCURRENT_EXECUTIONS": 1}, {"RATE_LIMIT_PER_MINUTE": 0}):
        settings.MCP_CONFIG = {
            **settings.MCP_CONFIG,
            "MAX_CONCURRENT_EXECUTIONS": 20,
            "RATE_LIMIT_PER_MINUTE": 120,
            **limit,
        }
        with pytest.raises(RateLimited):
            await sync_to_async(services.execution_start)(user=bob, tool_name="generate_report", parameters=REPORT)
    settings.MCP_CONFIG = {**settings.MCP_CONFIG, "WS_MAX_CONNECTIONS_PER_USER": 1}
    refused = await connect(alice)
    assert (await refused.receive_output(timeout=10))["type"] == "websocket.send"  # the rate_limited error
    settings.MCP_CONFIG = {**settings.MCP_CONFIG, "WS_MAX_CONNECTIONS_PER_USER": 20, "RATE_LIMIT_PER_MINUTE": 120}
    await sync_to_async(services.execution_cancel)(user=bob, execution_id=blocker.pk)

    # The run replayed as server-sent events.
    replay = await asgi_http.get(f"/api/executions/{run.pk}/events/", headers=token_headers(alice))
    replayed = [event["data"] for event in parse_sse(replay.text)[0]]
    await ws.disconnect()

    after = await scrape(asgi_http, staff)
    gr = "generate_report"
    assert grown(after, before, "mcp_tools_executions_started_total", tool=gr) == 4
    assert grown(after, before, "mcp_tools_executions_started_total", tool="summarize_content") == 1
    assert grown(after, before, "mcp_tools_executions_ended_total", tool=gr, status="completed", error_code="") == 2
    assert grown(after, before, "mcp_tools_executions_ended_total", tool=gr, status="cancelled", error_code="") == 2
    assert (
        grown(
            after,
            before,
            "mcp_tools_executions_ended_total",
            tool="summarize_content",
            status="failed",
            error_code="invalid_url",
        )
        == 1
    )
    # Durations of what ran or waited (the cache answer is not a run).
    assert grown(after, before, "mcp_tools_execution_duration_seconds_count", tool=gr, status="completed") == 1
    assert grown(after, before, "mcp_tools_execution_duration_seconds_count", tool=gr, status="cancelled") == 2
    assert (
        grown(after, before, "mcp_tools_execution_duration_seconds_count", tool="summarize_content", status="failed")
        == 1
    )
    # Queue waits of the two that went through the queue; first text of the one that streamed.
    assert grown(after, before, "mcp_tools_execution_queue_wait_seconds_count", tool=gr) == 1
    assert grown(after, before, "mcp_tools_execution_queue_wait_seconds_count", tool="summarize_content") == 1
    assert grown(after, before, "mcp_tools_time_to_first_token_seconds_count", tool=gr) == 1
    assert grown(after, before, "mcp_tools_time_to_first_token_seconds_count", tool="summarize_content") == 0
    # Tokens: the run's, from its row; the cache answer spent none.
    assert run.input_tokens > 0 and run.output_tokens > 0
    for kind, spent in (("input", run.input_tokens), ("output", run.output_tokens)):
        assert grown(after, before, "mcp_tools_llm_tokens_total", tool=gr, model="offline", type=kind) == spent
    assert grown(after, before, "mcp_tools_cache_lookups_total", tool=gr, result="miss") == 1
    assert grown(after, before, "mcp_tools_cache_lookups_total", tool=gr, result="hit") == 1
    for limit in ("concurrent", "per_minute", "ws_connections"):
        assert grown(after, before, "mcp_tools_rate_limit_refusals_total", limit=limit) == 1, limit
    # Every delta that went out, per transport; every connection closed again.
    assert deltas(ran) > 1 and deltas(answered) >= 1 and deltas(replayed) == deltas(ran)
    assert grown(after, before, "mcp_tools_deltas_relayed_total", transport="websocket") == deltas(ran) + deltas(
        answered
    )
    assert grown(after, before, "mcp_tools_deltas_relayed_total", transport="sse") == deltas(replayed)
    assert grown(after, before, "mcp_tools_deltas_relayed_total", transport="mcp") == 0
    for transport in ("websocket", "sse", "mcp"):
        assert grown(after, before, "mcp_tools_connections", transport=transport) == 0, transport
    assert grown(after, before, "mcp_tools_event_log_append_seconds_count") >= 1


@pytest.mark.django_db
def test_metrics_need_a_staff_token_or_the_scrapers_bearer_token(client, alice, staff, settings):
    settings.METRICS_BEARER_TOKEN = SCRAPER_TOKEN

    def get(authorization: str | None = None, **headers):
        if authorization is not None:
            headers["HTTP_AUTHORIZATION"] = authorization
        return client.get("/metrics", **headers)

    for refused in (
        get(),
        get("Token nosuchkey"),
        get("Bearer " + SCRAPER_TOKEN[:-1] + "x"),
        get("Bearer "),
        get("Basic " + SCRAPER_TOKEN),
    ):
        assert refused.status_code == 401
        assert refused["WWW-Authenticate"] == 'Token, Bearer realm="metrics"'
        assert refused.json()["error"]["code"] == "not_authenticated"
        assert b"mcp_tools_" not in refused.content
    not_staff = get(f"Token {alice.auth_token.key}")
    assert not_staff.status_code == 403 and not_staff.json()["error"]["code"] == "permission_denied"

    for allowed in (get(f"Token {staff.auth_token.key}"), get("Bearer " + SCRAPER_TOKEN)):
        assert allowed.status_code == 200
        assert allowed["Content-Type"].startswith("text/plain")
        assert b"# TYPE mcp_tools_executions_started_total counter" in allowed.content
    openmetrics = get("Bearer " + SCRAPER_TOKEN, HTTP_ACCEPT="application/openmetrics-text; version=1.0.0")
    assert openmetrics["Content-Type"].startswith("application/openmetrics-text")
    assert openmetrics.content.rstrip().endswith(b"# EOF")
    assert client.post("/metrics", HTTP_AUTHORIZATION=f"Token {staff.auth_token.key}").status_code == 405

    settings.METRICS_BEARER_TOKEN = ""  # no scraper configured: no bearer token opens it, not even an empty one
    assert get("Bearer ").status_code == 401 and get("Bearer " + SCRAPER_TOKEN).status_code == 401
    get_user_model().objects.filter(pk=staff.pk).update(is_active=False)
    assert get(f"Token {staff.auth_token.key}").status_code == 401


def test_a_short_bearer_token_stops_the_start_up():
    env = {**os.environ, "METRICS_BEARER_TOKEN": "too-short"}
    env.pop("PYTEST_VERSION", None)
    started = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings"},
    )
    assert started.returncode != 0
    assert "METRICS_BEARER_TOKEN is shorter than 32 characters" in started.stderr
    assert "too-short" not in started.stderr


# Label names of every metric; values that identify a user, an execution or carry a message never appear.
LABEL_NAMES = {"tool", "status", "error_code", "model", "type", "transport", "result", "limit", "le"}
UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}")


@pytest.mark.django_db(transaction=True)
async def test_labels_are_tool_names_and_codes_never_users_executions_or_messages(tools, alice, staff, asgi_http):
    ran = await sync_to_async(run_now)(alice, "generate_report", REPORT)
    failed = await sync_to_async(run_now)(alice, "summarize_content", {"url": PRIVATE_URL})
    assert failed.error_code == "invalid_url" and failed.error

    samples = (await scrape(asgi_http, staff)).ours()
    tools_known = {name async for name in Tool.objects.values_list("name", flat=True)}
    users = {name async for name in get_user_model().objects.values_list("username", flat=True)}
    values = {}
    for (name, pairs), _ in samples.items():
        for label, value in pairs:
            assert label in LABEL_NAMES, (name, label)
            values.setdefault(label, set()).add(value)
    assert values["tool"] <= tools_known | {"unknown"}
    assert values["tool"] >= {"generate_report", "summarize_content"}
    assert values["status"] <= {"completed", "failed", "cancelled"}
    assert all(code == "" or labels.CODE_SHAPE.fullmatch(code) for code in values["error_code"])
    # The registry is the process's: earlier tests' runs with the Anthropic provider are in it too.
    assert values["model"] <= {"offline", LLMSettings.from_django().model, labels.OTHER}
    everything = {value for label_values in values.values() for value in label_values}
    assert not everything & users
    assert not [value for value in everything if UUID.search(value) or " " in value or "/" in value]
    assert not everything & {str(ran.pk), str(failed.pk), PRIVATE_URL, failed.error, "alice"}


def test_error_codes_must_look_like_codes_and_are_capped(monkeypatch):
    assert labels.error_code_label("fetch_timeout") == "fetch_timeout"
    for unbounded in ("Not found: /x", "a02ee231-9531-4a34-b8e4-31f208c153f6", "HTTP_500", 404, None, "x" * 60):
        assert labels.error_code_label(unbounded) == labels.OTHER, unbounded
    monkeypatch.setattr(labels, "_codes", {f"code_{n}" for n in range(labels.MAX_ERROR_CODES)})
    assert labels.error_code_label("code_7") == "code_7"
    assert labels.error_code_label("one_more_code") == labels.OTHER


def test_models_are_the_configured_one_or_other(settings):
    settings.LLM_PROVIDER, settings.ANTHROPIC_API_KEY, settings.ANTHROPIC_MODEL = "anthropic", "k", "claude-x-1"
    assert labels.model_label({"result": {"model": "claude-x-1"}}) == "claude-x-1"
    assert labels.model_label({"result": {"model": "claude-x-1-20261101"}}) == "claude-x-1-20261101"
    assert labels.model_label({"status": "cancelled"}) == "claude-x-1"  # no result: the model it called
    for foreign in ("claude-x-1-latest-and-more", "gpt-9", "claude-x-1 or anything"):
        assert labels.model_label({"result": {"model": foreign}}) == labels.OTHER
    settings.LLM_PROVIDER = "offline"
    assert labels.model_label({"status": "failed"}) == "offline"


@pytest.mark.django_db(transaction=True)
async def test_a_follower_behind_the_log_is_counted_as_lag_and_a_first_read_is_not(tools, alice):
    execution = await sync_to_async(run_now)(alice, "generate_report", REPORT)
    snapshot = await delivery.read_events(str(execution.pk))

    def lag() -> tuple[float, float]:
        return (
            REGISTRY.get_sample_value("mcp_tools_event_log_lag_events_count"),
            REGISTRY.get_sample_value("mcp_tools_event_log_lag_events_sum"),
        )

    count, total = lag()
    await delivery.catch_up(delivery.Cursor(str(execution.pk)))  # a new follower's replay
    assert lag() == (count, total)
    await delivery.catch_up(delivery.Cursor(str(execution.pk), after_seq=2, epoch=snapshot.epoch))
    assert lag() == (count + 1, total + snapshot.last_seq - 2)


def _metric_names() -> set[str]:
    """Every metric of the package, as a scrape names it (counters with ``_total``)."""
    from mcp_tools.metrics import instruments

    return {
        f"{metric._name}_total" if metric._type == "counter" else metric._name
        for metric in vars(instruments).values()
        if hasattr(metric, "_type") and hasattr(metric, "_name")
    }


def test_the_dashboard_and_the_readme_name_every_metric_and_only_those():
    names = _metric_names()
    assert len(names) == 12
    dashboard = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
    used = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"mcp_tools_\w+", target["expr"])
    }
    assert {re.sub(r"_(bucket|sum|count)$", "", name) for name in used} == names
    readme = (ROOT / "README.md").read_text()
    assert {name for name in names if f"| `{name}` |" not in readme} == set()
