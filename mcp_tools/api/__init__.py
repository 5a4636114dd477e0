"""The REST API (Django REST framework): the article's endpoints plus an event stream.

::

    GET  /api/tools/                         active tools, with usage stats
    GET  /api/tools/{id}/                    one tool ({id} may also be its name)
    POST /api/tools/{id}/execute/            run now, answer with the execution
    POST /api/tools/{id}/execute_async/      queue it, 202 {"execution_id", "task_id"}
    GET  /api/executions/                    your executions (?tool=, ?status=)
    GET  /api/executions/{id}/               one of them
    GET  /api/executions/{id}/status/        {"id", "status", "result", "error"}
    GET  /api/executions/{id}/events/        its events as server-sent events
    POST /api/auth/token/                    username + password -> {"token"}
    GET  /api/schema/, /api/docs/            OpenAPI 3 schema, Swagger UI

Every run goes through ``services.execution_start``, the same path as the
WebSocket's ``execute``; errors are translated once, in ``exceptions.py``.
"""
