"""OAuth end to end without a person: a client's metadata document, and the consent step automated.

* ``client_document(redirect_uri)``: a real HTTP server on loopback serving an
  MCP client's Client ID Metadata Document; its ``client_id`` is
  ``https://127.0.0.1:<port>/client.json``.
* ``LoopbackDocumentFetcher``: django-oauth-toolkit's CIMD fetcher for those
  test documents. The real fetcher only talks https to public addresses (the
  client's website is the edge a test cannot reach); this one fetches the same
  path over plain http from 127.0.0.1, and nothing else.
* ``Consent``: what a user does in the browser — log in to Django, press
  "Authorize" on django-oauth-toolkit's consent page — done over HTTP, and
  the redirect back to the client caught instead of followed.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from html import unescape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx2
import urllib3
from oauth2_provider.cimd import CIMDError, SafeMetadataFetcher


class LoopbackDocumentFetcher(SafeMetadataFetcher):
    def fetch(self, client_id):
        parts = urlsplit(client_id)
        if parts.hostname != "127.0.0.1":
            raise CIMDError("tests fetch client documents from 127.0.0.1 only")
        http = urllib3.PoolManager()
        response = http.request(
            "GET", f"http://127.0.0.1:{parts.port}{parts.path}", redirect=False, preload_content=False, timeout=5
        )
        try:
            return self._read_document(response)
        finally:
            response.release_conn()


@contextmanager
def client_document(redirect_uri: str, *, name: str = "Test MCP client") -> Iterator[str]:
    """Serve a public client's metadata document; yields its client_id URL."""
    documents: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            body = documents.get(self.path)
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body or b"{}")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    client_id = f"https://127.0.0.1:{server.server_port}/client.json"
    documents["/client.json"] = json.dumps(
        {
            "client_id": client_id,
            "client_name": name,
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }
    ).encode()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield client_id
    finally:
        server.shutdown()
        server.server_close()


def _hidden_inputs(html: str) -> dict[str, str]:
    fields = {}
    for tag in re.findall(r"<input[^>]*>", html):
        name = re.search(r'name="([^"]*)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name and 'type="hidden"' in tag:
            fields[unescape(name[1])] = unescape(value[1]) if value else ""
    return fields


class Consent:
    """A browser: logs in as ``username`` and approves (or denies) the authorization request."""

    def __init__(self, base_url: str, username: str, password: str, *, allow: bool = True) -> None:
        self.base_url, self.username, self.password, self.allow = base_url, username, password, allow
        self.redirected_to: str | None = None
        self.consent_page: str = ""

    async def __call__(self, authorization_url: str) -> None:
        """The SDK's redirect handler: where a real client would open the browser."""
        async with httpx2.AsyncClient(base_url=self.base_url, follow_redirects=False, timeout=30) as browser:
            login = await browser.get("/accounts/login/")
            fields = _hidden_inputs(login.text)
            response = await browser.post(
                "/accounts/login/",
                data={**fields, "username": self.username, "password": self.password},
                headers={"Referer": str(login.url)},
            )
            assert response.status_code == 302, "login failed"
            page = await browser.get(authorization_url)
            assert page.status_code == 200, page.text[:500]
            self.consent_page = page.text
            form = _hidden_inputs(page.text)
            if self.allow:
                form["allow"] = "Authorize"
            answer = await browser.post(authorization_url, data=form, headers={"Referer": authorization_url})
            assert answer.status_code == 302, answer.text[:500]
            self.redirected_to = urljoin(authorization_url, answer.headers["location"])

    async def callback(self):
        """The SDK's callback handler: the code and state the redirect carried."""
        from mcp.client.auth import AuthorizationCodeResult

        query = parse_qs(urlsplit(self.redirected_to or "").query)
        return AuthorizationCodeResult(
            code=query["code"][0], state=query.get("state", [None])[0], iss=query.get("iss", [None])[0]
        )
