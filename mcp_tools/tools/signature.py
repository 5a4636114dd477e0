"""JSON Schemas from a Python tool's type hints, by pydantic (never written by hand).

The parameters are the function's arguments after the context::

    async def word_count(ctx: ToolContext, text: str,
                         top: Annotated[int, Field(ge=1, le=50, description="How many words")] = 10) -> Counts:

gives ``{"type": "object", "properties": {"text": {"type": "string"}, "top": {...,
"default": 10}}, "required": ["text"], "additionalProperties": false}``, and
the return annotation (a ``TypedDict``, a pydantic model or a dataclass) gives
the result's schema, to which the streamed ``output_field`` (a string) is
added. ``Signature.arguments`` turns validated JSON parameters into the
keyword arguments the function takes (nested models become objects).
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, TypeAdapter

# Keys pydantic adds that say nothing to a client (the schema is the tool's, not a model's).
_NOISE = ("title",)


class SignatureError(TypeError):
    """A tool function whose signature cannot become a schema; says which tool and why."""


class Signature:
    def __init__(self, function: Callable[..., Any], *, tool_name: str, output_field: str) -> None:
        self.function = function
        self.tool_name = tool_name
        self.output_field = output_field
        hints = typing.get_type_hints(function, include_extras=True)
        parameters = list(inspect.signature(function).parameters.values())
        if not parameters or parameters[0].kind not in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ):
            raise SignatureError(f"Tool {tool_name!r}: the first argument must be the context (ctx).")
        fields: dict[str, Any] = {}
        for parameter in parameters[1:]:
            if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                raise SignatureError(f"Tool {tool_name!r}: *args and **kwargs cannot be described as parameters.")
            if parameter.name not in hints:
                raise SignatureError(f"Tool {tool_name!r}: parameter {parameter.name!r} needs a type hint.")
            default = ... if parameter.default is inspect.Parameter.empty else parameter.default
            fields[parameter.name] = (hints[parameter.name], default)
        self.model: type[BaseModel] = pydantic.create_model(
            f"{tool_name}_parameters", __config__=ConfigDict(extra="forbid"), **fields
        )
        self.returns = hints.get("return", inspect.Signature.empty)

    def parameters_schema(self) -> dict[str, Any]:
        schema = _clean(self.model.model_json_schema())
        schema.setdefault("properties", {})
        schema.setdefault("required", [])
        schema["additionalProperties"] = False
        return schema

    def output_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
        if _describes_an_object(self.returns):
            schema = _clean(TypeAdapter(self.returns).json_schema())
        schema.setdefault("properties", {})
        schema["properties"].setdefault(
            self.output_field, {"type": "string", "description": "The streamed output, joined."}
        )
        required = schema.setdefault("required", [])
        if self.output_field not in required:
            required.append(self.output_field)
        return schema

    def arguments(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """The keyword arguments for validated JSON ``parameters`` (defaults applied)."""
        values = self.model.model_validate(parameters)
        return {name: getattr(values, name) for name in type(values).model_fields}


def _describes_an_object(annotation: Any) -> bool:
    if annotation in (inspect.Signature.empty, None, type(None), str, dict, Any):
        return False
    origin = typing.get_origin(annotation)
    if origin in (dict, typing.Union) or origin is not None and str(origin).endswith("UnionType"):
        return False
    return (
        typing.is_typeddict(annotation)
        or dataclasses.is_dataclass(annotation)
        or (inspect.isclass(annotation) and issubclass(annotation, BaseModel))
    )


def _clean(schema: Any) -> Any:
    """Drop pydantic's ``title`` keywords (property *names* such as a parameter called title stay)."""
    if isinstance(schema, list):
        return [_clean(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    cleaned = {}
    for key, value in schema.items():
        if key in _NOISE:
            continue
        if key in ("properties", "$defs") and isinstance(value, dict):
            cleaned[key] = {name: _clean(sub) for name, sub in value.items()}
        else:
            cleaned[key] = _clean(value)
    return cleaned


def result_as_dict(value: Any) -> dict[str, Any]:
    """A tool's return value as the result object (a string or None adds no fields)."""
    if value is None or isinstance(value, str):
        return {}
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return TypeAdapter(type(value)).dump_python(value, mode="json")
    if isinstance(value, dict):
        return TypeAdapter(dict[str, Any]).dump_python(value, mode="json")
    raise TypeError(
        f"A tool returns a dict, a TypedDict, a pydantic model, a dataclass, a str or None; got {type(value).__name__}."
    )
