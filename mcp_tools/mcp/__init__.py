"""MCP: this service's tools for Claude Desktop, Claude Code and any MCP client.

The tool registry (the active ``Tool`` rows, from ``gantz.yaml``) served with
the official ``mcp`` SDK, every call an ordinary ``ToolExecution`` of the
calling user (recorded, cached, counted, visible in the monitor) whose text
streams to the client as progress notifications::

    server.py    the MCP server: tools/list from the rows, tools/call -> execution_start
    follow.py    follows an execution on the channel layer + event log, each event once
    results.py   executions and ServiceErrors as CallToolResult (the one translation point)
    auth.py      DRF tokens as bearer tokens; the user of a request (HTTP) or process (stdio)
    asgi.py      /mcp (streamable HTTP) beside Django and the WebSockets, and its lifespan

Transports: streamable HTTP at ``/mcp`` (``Authorization: Bearer <token>``)
and stdio (``python manage.py mcp_stdio --user NAME``).
"""
