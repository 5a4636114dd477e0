"""The fixture's prompts, resources and completions, added to the MCP server.

The project serves tools only; the suite also calls prompts and resources,
so this module hands them to ``build_server`` through
``settings.MCP_SERVER_CONTRIBUTIONS`` (mcp_tools/mcp/server.py). Texts and
URIs are the suite's.
"""

from __future__ import annotations

import json
import re
from typing import Any

import mcp_types as types
from mcp.server import Server
from mcp.server.caching import CacheHint
from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError

from mcp_tools.mcp.calls import wire_responses
from mcp_tools.mcp.interactive import InputRequired, elicitation

from .bodies import PNG_1PX

LIST_HINT = CacheHint(ttl_ms=300_000, scope="public")
READ_HINT = CacheHint(ttl_ms=300_000, scope="private")
RESOURCE_NOT_FOUND = -32002

PROMPTS = [
    types.Prompt(
        name="test_simple_prompt", title="Simple Test Prompt", description="A simple prompt without arguments"
    ),
    types.Prompt(
        name="test_prompt_with_arguments",
        title="Prompt With Arguments",
        description="A prompt with required arguments",
        arguments=[
            types.PromptArgument(name="arg1", description="First test argument", required=True),
            types.PromptArgument(name="arg2", description="Second test argument", required=True),
        ],
    ),
    types.Prompt(
        name="test_prompt_with_embedded_resource",
        title="Prompt With Embedded Resource",
        description="A prompt that includes an embedded resource",
        arguments=[types.PromptArgument(name="resourceUri", description="URI of the resource to embed", required=True)],
    ),
    types.Prompt(
        name="test_prompt_with_image", title="Prompt With Image", description="A prompt that includes image content"
    ),
    types.Prompt(name="test_input_required_result_prompt", description="MRTR: prompt that requires elicitation input"),
]


def _user(content: dict[str, Any]) -> dict[str, Any]:
    return {"role": "user", "content": content}


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def prompt_messages(name: str, arguments: dict[str, str], responses: dict[str, Any]) -> list[dict] | InputRequired:
    if name == "test_simple_prompt":
        return [_user(_text("This is a simple prompt for testing."))]
    if name == "test_prompt_with_arguments":
        return [_user(_text(f"Prompt with arguments: arg1='{arguments.get('arg1')}', arg2='{arguments.get('arg2')}'"))]
    if name == "test_prompt_with_embedded_resource":
        return [
            _user(
                {
                    "type": "resource",
                    "resource": {
                        "uri": arguments.get("resourceUri", "test://embedded"),
                        "mimeType": "text/plain",
                        "text": "Embedded resource content for testing.",
                    },
                }
            ),
            _user(_text("Please process the embedded resource above.")),
        ]
    if name == "test_prompt_with_image":
        return [
            _user({"type": "image", "data": PNG_1PX, "mimeType": "image/png"}),
            _user(_text("Please analyze the image above.")),
        ]
    if name == "test_input_required_result_prompt":
        answer = responses.get("user_context")
        context = (answer.get("content") or {}).get("context") if isinstance(answer, dict) else None
        if context is None:
            return InputRequired(
                {"user_context": elicitation("What context should the prompt use?", {"context": {"type": "string"}})}
            )
        return [_user(_text(f"Prompt with context: {context}"))]
    raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown prompt: {name}")


RESOURCES = [
    types.Resource(
        uri="test://static-text",
        name="static-text",
        title="Static Text Resource",
        description="A static text resource for testing",
        mime_type="text/plain",
    ),
    types.Resource(
        uri="test://static-binary",
        name="static-binary",
        title="Static Binary Resource",
        description="A static binary resource (image) for testing",
        mime_type="image/png",
    ),
    types.Resource(
        uri="test://watched-resource",
        name="watched-resource",
        title="Watched Resource",
        description="A resource that changes",
        mime_type="text/plain",
    ),
]
TEMPLATE = types.ResourceTemplate(
    uri_template="test://template/{id}/data",
    name="template",
    title="Resource Template",
    description="A resource template with parameter substitution",
    mime_type="application/json",
)


def resource_contents(uri: str) -> list[dict[str, Any]]:
    if uri == "test://static-text":
        return [{"uri": uri, "mimeType": "text/plain", "text": "This is the content of the static text resource."}]
    if uri == "test://static-binary":
        return [{"uri": uri, "mimeType": "image/png", "blob": PNG_1PX}]
    if uri == "test://watched-resource":
        return [{"uri": uri, "mimeType": "text/plain", "text": "Watched resource content"}]
    if match := re.fullmatch(r"test://template/([^/]+)/data", uri):
        ident = match[1]
        return [
            {
                "uri": uri,
                "mimeType": "application/json",
                "text": json.dumps({"id": ident, "templateTest": True, "data": f"Data for ID: {ident}"}),
            }
        ]
    raise MCPError(code=RESOURCE_NOT_FOUND, message="Resource not found", data={"uri": uri})


def contribute(server: Server) -> None:
    """Prompts, resources and completions of the fixture, on ``server``."""

    async def list_prompts(ctx: ServerRequestContext, params) -> types.ListPromptsResult:
        return types.ListPromptsResult(prompts=PROMPTS)

    async def get_prompt(ctx: ServerRequestContext, params: types.GetPromptRequestParams):
        answer = prompt_messages(params.name, params.arguments or {}, wire_responses(params.input_responses))
        if isinstance(answer, InputRequired):
            return answer.as_result()
        return types.GetPromptResult.model_validate({"messages": answer})

    async def list_resources(ctx: ServerRequestContext, params) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=RESOURCES)

    async def list_templates(ctx: ServerRequestContext, params) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(resource_templates=[TEMPLATE])

    async def read_resource(ctx: ServerRequestContext, params: types.ReadResourceRequestParams):
        return types.ReadResourceResult.model_validate({"contents": resource_contents(str(params.uri))})

    async def complete(ctx: ServerRequestContext, params: types.CompleteRequestParams) -> types.CompleteResult:
        prefix = params.argument.value or ""
        values = [value for value in ("alpha", "beta", "gamma") if value.startswith(prefix)]
        return types.CompleteResult(completion=types.Completion(values=values, total=len(values), has_more=False))

    for method, params_type, handler in [
        ("prompts/list", types.PaginatedRequestParams, list_prompts),
        ("prompts/get", types.GetPromptRequestParams, get_prompt),
        ("resources/list", types.PaginatedRequestParams, list_resources),
        ("resources/templates/list", types.PaginatedRequestParams, list_templates),
        ("resources/read", types.ReadResourceRequestParams, read_resource),
        ("completion/complete", types.CompleteRequestParams, complete),
    ]:
        server.add_request_handler(method, params_type, handler)
    server.cache_hints.update(
        {
            "prompts/list": LIST_HINT,
            "resources/list": LIST_HINT,
            "resources/templates/list": LIST_HINT,
            "resources/read": READ_HINT,
        }
    )
