"""Run the conformance suite's authorization-server scenarios with the consent step automated.

    python tools/conformance_authorization.py --issuer http://127.0.0.1:8123 --port 3817 \
        --client-id conformance-suite --username U --password P -o var/conformance/<run>/authorization

The suite prints an authorization URL for a person to open and waits for the
redirect on its callback server (127.0.0.1:<port>/callback). Here a small
"browser" does what the person would: logs in to Django, presses Authorize on
django-oauth-toolkit's consent page, and follows the redirect to the suite's
callback. Exits with the suite's status.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from html import unescape
from urllib.parse import urljoin

import httpx

AUTHORIZE_URL = re.compile(r"^(https?://\S+/o/authorize/\?\S+)$")


def hidden_inputs(html: str) -> dict[str, str]:
    fields = {}
    for tag in re.findall(r"<input[^>]*>", html):
        name, value = re.search(r'name="([^"]*)"', tag), re.search(r'value="([^"]*)"', tag)
        if name and 'type="hidden"' in tag:
            fields[unescape(name[1])] = unescape(value[1]) if value else ""
    return fields


def consent(issuer: str, authorization_url: str, username: str, password: str) -> None:
    with httpx.Client(base_url=issuer, follow_redirects=False, timeout=30) as browser:
        login = browser.get("/accounts/login/")
        logged_in = browser.post(
            "/accounts/login/",
            data={**hidden_inputs(login.text), "username": username, "password": password},
            headers={"Referer": str(login.url)},
        )
        if logged_in.status_code != 302:
            sys.exit("conformance_authorization: could not log in")
        page = browser.get(authorization_url)
        answer = browser.post(
            authorization_url,
            data={**hidden_inputs(page.text), "allow": "Authorize"},
            headers={"Referer": authorization_url},
        )
        if answer.status_code != 302:
            sys.exit(f"conformance_authorization: consent refused ({answer.status_code}): {answer.text[:300]}")
        httpx.get(urljoin(authorization_url, answer.headers["location"]), timeout=30)  # the suite's callback


def main() -> int:
    parser = argparse.ArgumentParser()
    for option in ("--issuer", "--client-id", "--username", "--password", "-o"):
        parser.add_argument(option, required=True)
    parser.add_argument("--port", required=True, type=int)
    args = parser.parse_args()
    suite = subprocess.Popen(
        [
            "conformance",
            "authorization",
            "--url",
            args.issuer,
            "--client-id",
            args.client_id,
            "--port",
            str(args.port),
            "-o",
            args.o,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert suite.stdout is not None
    for line in suite.stdout:
        print(line, end="")
        if match := AUTHORIZE_URL.match(line.strip()):
            consent(args.issuer, match[1], args.username, args.password)
    return suite.wait()


if __name__ == "__main__":
    sys.exit(main())
