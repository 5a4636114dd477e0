"""OpenAPI additions that drf-spectacular cannot infer.

The event stream is a plain async Django view (DRF views are synchronous), so
the generator does not see it; ``add_event_stream`` (a
``SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]`` entry) describes it.
"""

from __future__ import annotations

from typing import Any

EVENT_STREAM_PATH = "/api/executions/{id}/events/"

EVENT_STREAM_DESCRIPTION = """\
The execution's events (the WebSocket protocol's execution events) as server-sent events:
`id: <seq>`, `event: <type>`, `data: <the event as JSON>`, a blank line. Stored events first, then live
ones; the response ends after `execution.completed`, `execution.failed` or `execution.cancelled`.
Resume with the `Last-Event-ID` header (EventSource does it) or `?after_seq=N`: exactly the events with
a higher seq follow. `: keepalive` comment lines come after 15 s of silence.
Authenticate with the Token header, `?token=<key>` (for EventSource) or the session cookie."""


def add_event_stream(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    """Postprocessing hook: document ``GET /api/executions/{id}/events/``."""
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    result.setdefault("paths", {})[EVENT_STREAM_PATH] = {
        "get": {
            "operationId": "executions_events",
            "summary": "Stream an execution's events (server-sent events)",
            "description": EVENT_STREAM_DESCRIPTION,
            "tags": ["executions"],
            "parameters": [
                {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}},
                {
                    "name": "after_seq",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 0},
                    "description": "Send only events with a higher seq.",
                },
                {
                    "name": "Last-Event-ID",
                    "in": "header",
                    "schema": {"type": "integer", "minimum": 0},
                    "description": "As after_seq; wins when both are given.",
                },
                {
                    "name": "token",
                    "in": "query",
                    "schema": {"type": "string"},
                    "description": "An API token, for clients that cannot set headers.",
                },
            ],
            "security": [{"tokenAuth": []}, {"cookieAuth": []}],
            "responses": {
                "200": {
                    "description": "The event stream.",
                    "content": {"text/event-stream": {"schema": {"type": "string"}}},
                },
                "400": {"description": "Last-Event-ID / after_seq is not a seq.", "content": error},
                "401": {"description": "No or invalid credentials.", "content": error},
                "404": {"description": "No such execution of yours.", "content": error},
            },
        }
    }
    return result
