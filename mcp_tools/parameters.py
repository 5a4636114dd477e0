"""A tool's parameters, checked against its JSON Schema (Draft 2020-12), every problem listed.

    parameters_validate(tool, {"data": 5})
    # InvalidParameters: details = [{"path": "data", "field": "data", "message": "5 is not of type 'object'"}]

``field`` is the top-level parameter a problem is about (null if none), so a
form can show each message under its input; ``path`` is where inside the
parameters it is.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

from .errors import InvalidParameters
from .models import Tool


def parameters_validate(tool: Tool, parameters: Any) -> dict[str, Any]:
    """The parameters, or InvalidParameters listing every problem found."""
    validator = Draft202012Validator(tool.parameters_schema or {"type": "object"})
    problems = [
        {"path": "/".join(str(p) for p in error.absolute_path), "field": _field_of(error), "message": error.message}
        for error in sorted(validator.iter_errors(parameters), key=lambda e: list(e.absolute_path))
    ]
    if problems:
        raise InvalidParameters(
            f"Invalid parameters for {tool.name}: " + "; ".join(p["message"] for p in problems), details=problems
        )
    return parameters


def _field_of(error) -> str | None:
    """The top-level parameter a schema error is about (for forms)."""
    if error.absolute_path:
        return str(error.absolute_path[0])
    if error.validator == "required":
        return error.message.split("'")[1] if "'" in error.message else None
    if error.validator == "additionalProperties" and "'" in error.message:
        return error.message.split("'")[1]
    return None
