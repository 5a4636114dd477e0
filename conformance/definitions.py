"""The fixture tools' rows: what ``sync_tools`` writes for them in conformance mode.

One entry per tool: its description, input schema, the JSON Schema of its
result (every tool declares one: MCP's ``outputSchema``), the function that
runs it and whether it runs as an MCP task (``definition["mcp"]["tasks"]``:
``forbidden``, ``optional`` or ``required``; docs/mcp.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import bodies as tools

OBJECT: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}
BLOCK: dict[str, Any] = {"type": "object", "required": ["type"], "properties": {"type": {"type": "string"}}}


def text_result(**blocks: dict[str, Any]) -> dict[str, Any]:
    """A result holding streamed ``text``, plus content blocks by name."""
    return {"type": "object", "required": ["text", *blocks], "properties": {"text": {"type": "string"}, **blocks}}


def takes(**properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "additionalProperties": False}


@dataclass(frozen=True)
class Fixture:
    name: str
    description: str
    run: Callable[[dict, tools.ToolContext], dict]
    parameters: dict[str, Any] = field(default_factory=lambda: dict(OBJECT))
    output: dict[str, Any] = field(default_factory=text_result)
    tasks: str = "forbidden"
    timeout: int = 120


# The suite's JSON Schema 2020-12 fixture (SEP-1613/SEP-2106): every keyword must survive tools/list.
JSON_SCHEMA_2020_12 = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {
        "address": {
            "$anchor": "addressDef",
            "type": "object",
            "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
        }
    },
    "properties": {
        "name": {"type": "string"},
        "address": {"$ref": "#/$defs/address"},
        "contactMethod": {"type": "string", "enum": ["phone", "email"]},
        "phone": {"type": "string"},
        "email": {"type": "string"},
    },
    "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
    "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
    "then": {"required": ["phone"]},
    "else": {"required": ["email"]},
    "additionalProperties": False,
}

# Tools whose final round follows an MCP multi-round-trip exchange (conformance/interactive.py):
# the answers gathered become their `message`.
MESSAGE = takes(message={"type": "string", "description": "Filled in from the answers the client gave."})

FIXTURES: list[Fixture] = [
    Fixture("test_simple_text", "Tests simple text content response", tools.simple_text),
    Fixture("test_image_content", "Tests image content response", tools.image_content, output=text_result(image=BLOCK)),
    Fixture("test_audio_content", "Tests audio content response", tools.audio_content, output=text_result(audio=BLOCK)),
    Fixture(
        "test_embedded_resource",
        "Tests embedded resource content response",
        tools.embedded_resource,
        output=text_result(resource=BLOCK),
    ),
    Fixture(
        "test_multiple_content_types",
        "Tests response with multiple content types (text, image, resource)",
        tools.multiple_content_types,
        output=text_result(image=BLOCK, resource=BLOCK),
    ),
    Fixture("test_tool_with_progress", "Tests tool that reports progress notifications", tools.with_progress),
    Fixture("test_error_handling", "Tests error response handling", tools.error_handling),
    Fixture(
        "json_schema_2020_12_tool",
        "Takes a contact described with JSON Schema 2020-12",
        tools.greet,
        parameters=JSON_SCHEMA_2020_12,
    ),
    Fixture(
        "test_header_param",
        "Greets a region named in an argument mirrored into the Mcp-Param-Region header",
        tools.greet_region,
        parameters={**takes(region={"type": "string", "x-mcp-header": "Region"}), "required": ["region"]},
    ),
    Fixture("greet", "Says hello; always answers at once.", tools.greet, parameters=takes(name={"type": "string"})),
    Fixture(
        "slow_compute",
        "Computes for `seconds` seconds; runs as a task for clients that take tasks.",
        tools.slow_compute,
        parameters=takes(seconds={"type": "number", "minimum": 0}, label={"type": "string"}),
        tasks="optional",
    ),
    Fixture(
        "failing_job", "Fails after a second (a tool error); only runs as a task.", tools.failing_job, tasks="required"
    ),
    Fixture(
        "protocol_error_job",
        "Crashes (an internal error); runs as a task for clients that take tasks.",
        tools.protocol_error_job,
        tasks="optional",
    ),
    Fixture(
        "confirm_delete",
        "Asks the client to confirm, then answers.",
        tools.confirm_delete,
        parameters={**takes(filename={"type": "string"}), "required": ["filename"]},
        tasks="optional",
    ),
    Fixture("multi_input", "Asks the client two questions at once, then answers.", tools.multi_input, tasks="optional"),
    Fixture(
        "test_tool_with_task",
        "Asks for a name (multi-round trip), then greets in a task.",
        tools.echo,
        parameters=MESSAGE,
        tasks="required",
    ),
    *[
        Fixture(name, description, tools.echo, parameters=MESSAGE)
        for name, description in [
            ("test_input_required_result_elicitation", "MRTR: returns InputRequiredResult with elicitation request"),
            ("test_input_required_result_sampling", "MRTR: returns InputRequiredResult with sampling request"),
            ("test_input_required_result_list_roots", "MRTR: returns InputRequiredResult with roots/list request"),
            ("test_input_required_result_request_state", "MRTR: returns InputRequiredResult with requestState"),
            (
                "test_input_required_result_multiple_inputs",
                "MRTR: returns InputRequiredResult with multiple input requests",
            ),
            ("test_input_required_result_multi_round", "MRTR: multi-round InputRequiredResult workflow"),
            ("test_input_required_result_tampered_state", "MRTR: sealed requestState integrity test"),
            ("test_input_required_result_capabilities", "MRTR: respects client capabilities in inputRequests"),
            ("test_missing_capability", "Needs the client's sampling capability"),
        ]
    ],
]
