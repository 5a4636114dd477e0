"""``python manage.py cleanup_executions [--days N]``: delete old execution records.

The same task Celery beat runs daily (``CELERY_BEAT_SCHEDULE`` in settings),
run here in this process, for cron or by hand. ``--days`` defaults to
``MCP_CONFIG['RETENTION_DAYS']`` (env ``MCP_RETENTION_DAYS``, 30). Usage
statistics are kept: they count executions, not rows.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from mcp_tools.tasks import cleanup_old_executions

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Delete tool executions older than --days (default: MCP_CONFIG['RETENTION_DAYS'])."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help=f"Keep executions created in the last DAYS days (default {settings.MCP_CONFIG['RETENTION_DAYS']}).",
        )

    def handle(self, *args, days: int | None, **options) -> None:
        if days is not None and days < 0:
            raise CommandError("--days must be 0 or more.")
        days = settings.MCP_CONFIG["RETENTION_DAYS"] if days is None else days
        outcome = cleanup_old_executions(days)
        self.stdout.write(f"Deleted {outcome['deleted']} execution(s) older than {days} day(s).")
