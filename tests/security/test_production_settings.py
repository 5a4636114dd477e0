"""Production settings from the environment: TLS cookies, HSTS, the https redirect, the proxy's header.

``HTTPS=true`` (with ``SECURE_PROXY_SSL_HEADER`` behind a TLS proxy) turns
them all on, and ``manage.py check --deploy`` is then clean (``.ci/run``
runs it too). A daphne started that way redirects plain http, sends HSTS,
marks its cookies Secure, and still serves the page, a login and a
WebSocket run to clients that came through the proxy.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import sys

import httpx
import pytest

from tests.api.conftest import REPORT_PARAMETERS
from tests.e2e.helpers import recv, recv_until_terminal, send, ws_connect
from tests.mcp.helpers import FOREIGN_ENV, ROOT
from tests.security.conftest import another_daphne


def deploy_check(tmp_path, **extra: str) -> subprocess.CompletedProcess:
    import os

    env = {key: value for key, value in os.environ.items() if key not in FOREIGN_ENV and key != "PYTEST_VERSION"}
    env.update(
        {
            "DATA_DIR": str(tmp_path),
            "REDIS_URL": "redis://127.0.0.1:6379/0",
            "DATABASE_URL": "postgres://mcp@127.0.0.1:5432/mcp",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "tools.example.com",
            **extra,
        }
    )
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_a_production_environment(tmp_path):
    checked = deploy_check(tmp_path, HTTPS="true", SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "no issues" in checked.stdout


def test_check_deploy_names_what_a_deployment_without_tls_settings_lacks(tmp_path):
    checked = deploy_check(tmp_path)
    assert checked.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in checked.stderr, warning


@pytest.mark.production
@pytest.mark.django_db(transaction=True)
def test_a_daphne_with_https_settings_redirects_sends_hsts_and_secure_cookies_and_still_serves(stack, tools, alice):
    with another_daphne(stack, "daphne-https", HTTPS="true", SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto") as port:
        base, proxied = f"http://127.0.0.1:{port}", {"X-Forwarded-Proto": "https"}
        plain = httpx.get(f"{base}/accounts/login/", timeout=30)
        assert plain.status_code == 301 and plain.headers["Location"] == f"https://127.0.0.1:{port}/accounts/login/"
        with httpx.Client(base_url=base, headers=proxied, timeout=30) as client:
            page = client.get("/accounts/login/")
            assert page.status_code == 200
            assert page.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
            assert "secure" in page.headers["Set-Cookie"].lower()  # the CSRF cookie
            csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)[1]
            # The proxy's side is https, so the Secure cookie goes back; httpx, speaking http here, would not send it.
            login = client.post(
                "/accounts/login/",
                data={"username": "alice", "password": "pw-alice", "csrfmiddlewaretoken": csrf},
                headers={
                    "Referer": f"https://127.0.0.1:{port}/accounts/login/",
                    "Cookie": f"csrftoken={page.cookies['csrftoken']}",
                },
            )
            assert login.status_code == 302, login.text[:500]
            session = [c for c in login.headers.get_list("Set-Cookie") if c.startswith("sessionid=")]
            assert session and "secure" in session[0].lower() and "httponly" in session[0].lower()
        with ws_connect(
            f"ws://127.0.0.1:{port}", alice.auth_token.key, headers={**proxied, "Origin": f"https://127.0.0.1:{port}"}
        ) as ws:
            send(ws, {"type": "execute", "tool": "generate_report", "parameters": REPORT_PARAMETERS})
            assert recv(ws)["type"] == "execution.accepted"
            assert recv_until_terminal(ws)[-1]["type"] == "execution.completed"


@pytest.mark.django_db
def test_no_password_reset_form_mails_links_built_from_a_forged_host(client, settings, alice):
    settings.ALLOWED_HOSTS = ["*"]
    for path in ("/accounts/password_reset/", "/accounts/reset/MQ/set-password/", "/accounts/password_change/"):
        assert client.post(path, {"email": "alice@example.com"}, HTTP_HOST="evil.example").status_code == 404, path
    assert client.get("/accounts/login/").status_code == 200
