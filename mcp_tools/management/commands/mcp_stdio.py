"""``python manage.py mcp_stdio --user NAME``: the MCP server over stdin/stdout.

For MCP clients that spawn a local process (Claude Desktop, Claude Code):
the same server as ``/mcp`` (``mcp_tools/mcp/server.py``), acting as one
user, so every call is a ``ToolExecution`` of that user, run by the same
service path (the Celery workers in production, an embedded worker thread
in this process otherwise)::

    claude mcp add tools -- python /path/to/manage.py mcp_stdio --user ann

stdout carries protocol frames and nothing else: logging goes to stderr
(``settings.LOGGING``), and while serving the SDK points file descriptor 1
at stderr, so stray output from anything in the process misses the wire.
Without ``--user`` the process acts as ``settings.RUN_TOOL_USER`` (created if
missing, like ``run_tool`` does for Gantz); a user named with ``--user``
must exist and be active.
"""

from __future__ import annotations

import logging

import anyio
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from mcp.server.stdio import stdio_server

from mcp_tools import embedded
from mcp_tools.mcp.auth import fixed_user
from mcp_tools.mcp.server import build_server

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Serve the tools to an MCP client over stdio, acting as one user."

    def add_arguments(self, parser):
        parser.add_argument(
            "--user", default=None, help=f"Act as this (existing, active) user; default: {settings.RUN_TOOL_USER}."
        )

    def handle(self, *args, **options):
        user = self.user(options["user"])
        logger.info("MCP stdio server acting as %s", user.get_username())
        anyio.run(serve_stdio, user)

    def user(self, username: str | None):
        users = get_user_model().objects
        if username is None:
            tool_user, created = users.get_or_create(username=settings.RUN_TOOL_USER)
            if created:
                tool_user.set_unusable_password()
                tool_user.save(update_fields=["password"])
            return tool_user
        named = users.filter(username=username, is_active=True).first()
        if named is None:
            raise CommandError(
                f"No active user is named {username!r}; create it first "
                "(python manage.py createsuperuser, or the admin)."
            )
        return named


async def serve_stdio(user) -> None:
    async with stdio_server() as (read_stream, write_stream):
        # Inside the claim on fd 1: whatever the worker prints lands on stderr.
        embedded.ensure_started()
        server = build_server(user_for=fixed_user(user))
        await server.run(read_stream, write_stream, server.create_initialization_options())
