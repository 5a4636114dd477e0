"""Brute force through real daphne (ASGI: django-axes' async middleware path), PostgreSQL, default limit.

The stack runs with the defaults (``LOGIN_FAILURE_LIMIT=10``,
``LOGIN_COOLOFF_S=900``): the tenth wrong password in a row is a 429 with
``Retry-After``, on the token endpoint and on both login forms; requests with
an API token are answered as usual meanwhile.
"""

from __future__ import annotations

import re

import httpx
import pytest

from mcp_tools.selectors import tools_visible_to
from tests.api.conftest import token_headers

pytestmark = [pytest.mark.production, pytest.mark.django_db(transaction=True)]

LIMIT, COOLOFF_S = 10, 900


def form_attempt(client: httpx.Client, path: str, username: str, password: str) -> httpx.Response:
    page = client.get(path)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)[1]
    return client.post(path, data={"username": username, "password": password, "csrfmiddlewaretoken": csrf})


def test_token_endpoint_answers_429_after_ten_wrong_passwords(stack, tools, alice):
    url = f"{stack.http_url}/api/auth/token/"
    statuses = [
        httpx.post(url, data={"username": "alice", "password": f"guess-{n}"}, timeout=30).status_code
        for n in range(LIMIT - 1)
    ]
    assert statuses == [400] * (LIMIT - 1)
    for password in ("guess", "pw-alice"):
        locked = httpx.post(url, json={"username": "alice", "password": password}, timeout=30)
        assert locked.status_code == 429 and locked.headers["Retry-After"] == str(COOLOFF_S)
        assert locked.json()["error"]["code"] == "rate_limited"
    tools_list = httpx.get(f"{stack.http_url}/api/tools/", headers=token_headers(alice), timeout=30)
    assert tools_list.status_code == 200 and tools_list.json()["count"] == len(tools_visible_to(alice)) > 0


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_login_forms_answer_429_after_ten_wrong_passwords(stack, tools, staff, alice, path):
    with httpx.Client(base_url=stack.http_url, timeout=30) as client:
        for n in range(LIMIT - 1):
            assert form_attempt(client, path, staff.username, f"guess-{n}").status_code == 200
        locked = form_attempt(client, path, staff.username, "guess")
        assert locked.status_code == 429 and locked.headers["Retry-After"] == str(COOLOFF_S)
        assert "Too many failed logins" in locked.text
        assert form_attempt(client, path, staff.username, "pw-" + staff.username).status_code == 429
    tools_list = httpx.get(f"{stack.http_url}/api/tools/", headers=token_headers(alice), timeout=30)
    assert tools_list.status_code == 200
