"""The app: at start-up, find every app's tools and check the Gantz file and the SQLite version."""

from __future__ import annotations

import sqlite3

from django.apps import AppConfig
from django.conf import settings
from django.core import checks
from django.utils.module_loading import autodiscover_modules


class McpToolsConfig(AppConfig):
    name = "mcp_tools"
    verbose_name = "MCP tools"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Called once Django is set up: import ``tools`` of every installed app (like ``admin.py``, their
        ``@tool`` functions register), check the Gantz file, and redact secrets from access logs before a
        server writes its first line."""
        from .security import redact

        autodiscover_modules("tools")
        checks.register(check_gantz_file)
        checks.register(check_sqlite_version)
        redact.install()


def check_gantz_file(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """``manage.py check``: every problem of the Gantz file, with its tool and field."""
    from .gantz import GantzFileError
    from .tools.registry import all_tools, gantz_file

    try:
        all_tools()
    except GantzFileError as exc:
        return [
            checks.Error(
                f"{problem.tool or '(file)'}: {problem.field}: {problem.message}",
                obj=str(gantz_file()),
                id="mcp_tools.E001",
            )
            for problem in exc.problems
        ]
    return []


# The fair-share claim is one ``UPDATE … RETURNING`` statement (``engine/claims.py``).
SQLITE_NEEDED = (3, 35)


def check_sqlite_version(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """``manage.py check`` (and ``migrate``): a SQLite database needs SQLite 3.35 or newer."""
    uses_sqlite = any(db["ENGINE"].endswith("sqlite3") for db in settings.DATABASES.values())
    if not uses_sqlite or sqlite3.sqlite_version_info >= SQLITE_NEEDED:
        return []
    return [
        checks.Error(
            f"SQLite {sqlite3.sqlite_version} is too old: the embedded default needs SQLite 3.35 or newer.",
            hint="Use a Python built with a newer SQLite, or set DATABASE_URL to PostgreSQL.",
            id="mcp_tools.E002",
        )
    ]
