"""OAuth 2.1 for MCP, end to end with the official Python SDK client's own OAuth support:
401 + WWW-Authenticate → RFC 9728 metadata → RFC 8414 metadata → the client's
metadata document (CIMD) → authorization code + PKCE with the consent step
automated (oauth_helpers.Consent) → a token bound to /mcp → tools/list and a
call as the consenting user. DRF tokens keep working beside it."""

from __future__ import annotations

import anyio
import httpx2
import pytest
from mcp.client import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from oauth2_provider.models import AccessToken, Application

from mcp_tools.models import ToolExecution
from tests.mcp.helpers import http_session, structured
from tests.mcp.oauth_helpers import Consent, client_document

REDIRECT_URI = "http://127.0.0.1:33418/callback"  # never listened on: Consent catches the redirect


class MemoryStorage:
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info):
        self.client_info = client_info


@pytest.fixture
def cimd_on_loopback(settings):
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "CIMD_METADATA_FETCHER": "tests.mcp.oauth_helpers.LoopbackDocumentFetcher",
    }


def oauth_client(url: str, client_id: str, consent: Consent, storage: MemoryStorage, scope: str | None = None):
    metadata = OAuthClientMetadata(
        redirect_uris=[REDIRECT_URI],
        client_name="Test MCP client",
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method="none",
        scope=scope,
    )
    return OAuthClientProvider(
        url,
        metadata,
        storage,
        redirect_handler=consent,
        callback_handler=consent.callback,
        client_metadata_url=client_id,
    )


def list_and_call(url: str, auth) -> tuple[list[str], object]:
    async def scenario():
        async with httpx2.AsyncClient(auth=auth, timeout=httpx2.Timeout(30, read=120)) as http:
            async with Client(streamable_http_client(url, http_client=http), mode="auto") as client:
                listed = [tool.name for tool in (await client.list_tools()).tools]
                return listed, await client.call_tool("generate_report", {"data": {"a": 1}})

    return anyio.run(scenario)


@pytest.mark.django_db(transaction=True)
def test_an_mcp_client_gets_a_token_by_oauth_with_pkce_and_cimd_and_calls_as_its_user(
    uvicorn_server, tools, alice, cimd_on_loopback
):
    url = uvicorn_server.url + "/mcp"
    consent, storage = Consent(uvicorn_server.url, "alice", "pw-alice"), MemoryStorage()
    with client_document(REDIRECT_URI) as client_id:
        listed, result = list_and_call(url, oauth_client(url, client_id, consent, storage))
    assert sorted(listed) == ["generate_report", "my_usage", "service_health", "summarize_content"]
    assert not result.is_error and structured(result)["model"] == "offline"
    assert ToolExecution.objects.get().user == alice
    assert "Use the tools your account may use" in consent.consent_page
    application = Application.objects.get(client_id=client_id)  # registered from its metadata document
    assert application.client_type == Application.CLIENT_PUBLIC
    token = AccessToken.objects.get(application=application)
    assert token.user == alice and token.resource == [url] and token.token == ""  # audience-bound, hashed at rest
    assert storage.tokens.scope == "tools"


def issue(user, *, scope: str, resource: list[str], raw: str) -> None:
    """A token as the authorization server stores it (hashed), for checks of the resource server alone."""
    from django.utils import timezone

    application, _ = Application.objects.get_or_create(
        name="issued by hand",
        defaults={
            "client_type": Application.CLIENT_PUBLIC,
            "redirect_uris": REDIRECT_URI,
            "authorization_grant_type": Application.GRANT_AUTHORIZATION_CODE,
        },
    )
    AccessToken.objects.create(
        user=user,
        application=application,
        token=raw,
        scope=scope,
        resource=resource,
        expires=timezone.now() + timezone.timedelta(hours=1),
    )


@pytest.mark.django_db(transaction=True)
def test_a_token_scoped_to_one_tool_sees_and_calls_only_that_tool(uvicorn_server, tools, alice):
    url = uvicorn_server.url + "/mcp"
    issue(alice, scope="tools:summarize_content", resource=[url], raw="narrow-token")

    async def scenario():
        async with http_session(url, "narrow-token") as session:
            listed = [tool.name for tool in (await session.list_tools()).tools]
            return listed, await session.call_tool("generate_report", {"data": {"a": 1}})

    listed, result = anyio.run(scenario)
    assert listed == ["summarize_content"]
    assert result.is_error and structured(result)["error"]["code"] == "unknown_tool"
    assert not ToolExecution.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_discovery_starts_at_a_401_and_a_token_for_another_resource_is_refused(uvicorn_server, tools, alice):
    base = uvicorn_server.url
    anonymous = httpx2.post(base + "/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert anonymous.status_code == 401
    challenge = anonymous.headers["www-authenticate"]
    assert (
        challenge.startswith("Bearer ")
        and f'resource_metadata="{base}/.well-known/oauth-protected-resource/mcp"' in challenge
    )
    resource = httpx2.get(base + "/.well-known/oauth-protected-resource/mcp").json()
    assert resource["resource"] == base + "/mcp" and resource["authorization_servers"] == [base]
    assert "tools" in resource["scopes_supported"]
    server = httpx2.get(base + "/.well-known/oauth-authorization-server").json()
    assert server["code_challenge_methods_supported"] == ["S256"]
    assert server["client_id_metadata_document_supported"] is True
    assert (
        server["authorization_endpoint"] == base + "/o/authorize/" and "token" not in server["response_types_supported"]
    )

    for raw, resource_list in (("for-another-server", ["https://other.example/mcp"]), ("for-no-server", [])):
        issue(alice, scope="tools", resource=resource_list, raw=raw)
        refused = httpx2.post(
            base + "/mcp",
            headers={"Authorization": f"Bearer {raw}"},
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        )
        assert refused.status_code == 401 and 'error="invalid_token"' in refused.headers["www-authenticate"]


@pytest.mark.django_db(transaction=True)
def test_drf_tokens_keep_working_beside_oauth(uvicorn_server, tools, alice):
    async def scenario():
        async with http_session(uvicorn_server.url + "/mcp", alice.auth_token.key) as session:
            return [tool.name for tool in (await session.list_tools()).tools]

    assert sorted(anyio.run(scenario)) == ["generate_report", "my_usage", "service_health", "summarize_content"]


@pytest.mark.production
@pytest.mark.django_db(transaction=True)
def test_an_oauth_token_bound_to_mcp_calls_on_the_production_stack(stack, tools, alice):
    stack.anthropic.set_default({"tokens": 10, "delay_ms": 1})
    url = stack.http_url + "/mcp"
    issue(alice, scope="tools", resource=[url], raw="prod-token")
    issue(alice, scope="tools", resource=["https://other.example/mcp"], raw="foreign-token")

    async def scenario():
        async with http_session(url, "prod-token") as session:
            return await session.call_tool("generate_report", {"data": {"a": 1}})

    result = anyio.run(scenario)
    assert structured(result)["report"] == "".join(f"w{i} " for i in range(10))
    assert ToolExecution.objects.get().user == alice
    refused = httpx2.post(
        url, headers={"Authorization": "Bearer foreign-token"}, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    )
    assert refused.status_code == 401


@pytest.mark.django_db(transaction=True)
def test_a_client_document_with_an_http_redirect_off_this_machine_gets_no_code(
    uvicorn_server, tools, alice, cimd_on_loopback
):
    import base64
    import hashlib

    redirect = "http://attacker.example/callback"
    with client_document(redirect) as client_id:
        verifier = "v" * 50
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        consent = Consent(uvicorn_server.url, "alice", "pw-alice")
        query = httpx2.QueryParams(
            {
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": redirect,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "state": "s",
                "resource": uvicorn_server.url + "/mcp",
            }
        )
        with pytest.raises(AssertionError):  # the consent page is an error page: no form, no redirect
            anyio.run(consent, f"{uvicorn_server.url}/o/authorize/?{query}")
    assert consent.redirected_to is None
