"""Rows older versions stored with hostile JSON still render: REST, the web page's history, the admin.

Older versions let lone surrogates, NUL, ``1e999`` and deep nesting into
SQLite (and what PostgreSQL's jsonb accepts of them into PostgreSQL). The
rows are written here with raw SQL, as those versions left them; every page
that shows them answers 200, with the unshowable parts replaced (U+FFFD, the
number as text, a placeholder below ``MCP_JSON_MAX_DEPTH``).
"""

from __future__ import annotations

import json
import re

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client

from mcp_tools.jsonguard import TOO_DEEP_PLACEHOLDER
from mcp_tools.models import ToolExecution
from tests.api.conftest import REPORT_PARAMETERS, client_for, token_headers
from tests.conftest import run_now

pytestmark = pytest.mark.django_db(transaction=True)

DEEP = "[" * 100 + "]" * 100  # beyond MCP_JSON_MAX_DEPTH (64)
# As SQLite holds them: JSON text with the escapes older versions wrote.
SQLITE_PARAMETERS = '{"data": {"k": "\\ud800", "\\udfff": [1], "n": 1e999, "z": "a\\u0000b", "deep": %s}}' % DEEP
SQLITE_RESULT = '{"report": "half a pair: \\ud83d", "model": "offline", "usage": {"input_tokens": -1e999}}'
# PostgreSQL's jsonb refuses surrogates and NUL; it keeps 1e999 as a 1000-digit number, and deep nesting.
POSTGRES_PARAMETERS = '{"data": {"n": 1e999, "deep": %s}}' % DEEP
POSTGRES_RESULT = '{"report": "fine", "model": "offline", "usage": {"input_tokens": 1e999}}'


def stored_badly(user, parameters: str, result: str) -> ToolExecution:
    """A finished execution whose columns then get what an older version stored."""
    execution = run_now(user, "generate_report", REPORT_PARAMETERS)
    events = json.dumps(ToolExecution.objects.get(pk=execution.pk).events)[:-1] + ', {"note": %s}]' % result
    key = execution.pk.hex if connection.vendor == "sqlite" else str(execution.pk)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE mcp_tools_toolexecution SET parameters = %s, result = %s, events = %s WHERE id = %s",
            [parameters, result, events, key],
        )
    return execution


def superuser_client() -> Client:
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw-root"))
    return client


def history_labels(html: str) -> list[str]:
    match = re.search(r'<script id="history-data" type="application/json">(.*?)</script>', html, re.S)
    return [entry["label"] for entry in json.loads(match[1])]


def test_sqlite_rows_with_surrogates_nul_infinities_and_deep_nesting_still_render(tools, alice):
    execution = stored_badly(alice, SQLITE_PARAMETERS, SQLITE_RESULT)
    api = client_for(alice)
    listing = api.get("/api/executions/")
    assert listing.status_code == 200
    shown = listing.json()["results"][0]
    data = shown["parameters"]["data"]
    assert (data["k"], data["\ufffd"], data["n"], data["z"]) == ("\ufffd", [1], "Infinity", "a\ufffdb")
    assert TOO_DEEP_PLACEHOLDER in json.dumps(data["deep"], ensure_ascii=False)
    assert shown["result"]["report"] == "half a pair: \ufffd"
    assert shown["result"]["usage"]["input_tokens"] == "-Infinity"
    assert api.get(f"/api/executions/{execution.pk}/").json() == shown
    status = api.get(f"/api/executions/{execution.pk}/status/")
    assert status.status_code == 200 and status.json()["result"] == shown["result"]

    page = Client()
    page.force_login(alice)
    response = page.get("/")
    assert response.status_code == 200
    assert "\ufffd" in history_labels(response.content.decode())[0]

    admin = superuser_client()
    assert admin.get("/admin/mcp_tools/toolexecution/").status_code == 200
    detail = admin.get(f"/admin/mcp_tools/toolexecution/{execution.pk}/change/")
    assert detail.status_code == 200 and "half a pair: \ufffd" in detail.content.decode()
    # And the service answers normally afterwards.
    assert (
        api.post("/api/tools/generate_report/execute/", {"parameters": REPORT_PARAMETERS}, format="json").status_code
        == 200
    )


@pytest.mark.production
def test_postgresql_rows_with_huge_numbers_and_deep_nesting_still_render_through_daphne(stack, tools, alice):
    execution = stored_badly(alice, POSTGRES_PARAMETERS, POSTGRES_RESULT)
    base, headers = stack.http_url, token_headers(alice)
    listing = httpx.get(f"{base}/api/executions/", headers=headers, timeout=30)
    assert listing.status_code == 200
    shown = listing.json()["results"][0]
    assert TOO_DEEP_PLACEHOLDER in json.dumps(shown["parameters"]["data"]["deep"], ensure_ascii=False)
    assert httpx.get(f"{base}/api/executions/{execution.pk}/", headers=headers).status_code == 200
    assert httpx.get(f"{base}/api/executions/{execution.pk}/status/", headers=headers).status_code == 200
    admin = superuser_client()
    cookies = {name: morsel.value for name, morsel in admin.cookies.items()}
    for path in ("/admin/mcp_tools/toolexecution/", f"/admin/mcp_tools/toolexecution/{execution.pk}/change/"):
        assert httpx.get(base + path, cookies=cookies, timeout=30).status_code == 200, path
    page = Client()
    page.force_login(alice)
    response = httpx.get(base + "/", cookies={name: m.value for name, m in page.cookies.items()}, timeout=30)
    assert response.status_code == 200 and history_labels(response.text)
    ran = httpx.post(
        f"{base}/api/tools/generate_report/execute/",
        headers=headers,
        json={"parameters": REPORT_PARAMETERS},
        timeout=30,
    )
    assert ran.status_code == 200 and ran.json()["status"] == "completed"
