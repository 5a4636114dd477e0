"""MCP: this service's tools for Claude Desktop, Claude Code and any MCP client (docs/mcp.md).

The tools a caller may use, served with the official ``mcp`` SDK, every call
an ordinary ``ToolExecution`` of the calling user (recorded, counted, visible
in the monitor) whose text streams to the client as progress notifications,
or runs as a task for clients that take the Tasks extension::

    server.py       the low-level server: tools/list, tools/call, the Tasks extension, sealed requestState
    catalog.py      which tools a caller sees (access rule ∩ OAuth scopes), outputSchema, task support
    calls.py        one tools/call: prelude, execution_start (idempotency key: re-attach), progress, answer
    results.py      executions and ServiceErrors as CallToolResult / JSON-RPC errors (the one translation point)
    tasks.py        io.modelcontextprotocol/tasks (SEP-2663) on ToolExecution: tasks/get, update, cancel
    interactive.py  tools that ask their client before they run (SEP-2322 multi-round trips)
    inputs.py       a running tool waiting on its client's input (a task's inputRequests)
    follow.py       follows an execution on the channel layer + event log, each event once
    auth.py         bearer tokens (OAuth for /mcp, DRF), 401 with the RFC 9728 pointer; stdio's fixed user
    oauth.py        django-oauth-toolkit as the authorization server: scopes, token verification
    urls.py         /o/ and the /.well-known/ metadata documents
    anonymous.py    token-less access, conformance mode on loopback only
    asgi.py         /mcp (streamable HTTP) beside Django and the WebSockets, and its lifespan

Transports: streamable HTTP at ``/mcp`` and stdio (``python manage.py mcp_stdio --user NAME``).
"""
