"""``python manage.py sync_tools``: make the Tool table match the tools.

The tools are the Python ``@tool`` functions and the Gantz file's tools.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from mcp_tools.gantz import GantzFileError
from mcp_tools.tools.registry import sync_tools


class Command(BaseCommand):
    help = (
        "Load every tool (Python @tool functions, the Gantz file's scripts and HTTP calls) into Tool rows "
        "(idempotent; removed tools are deactivated). A broken Gantz file changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--file", help="Path to a Gantz file (default: settings.GANTZ_CONFIG).")

    def handle(self, *args, **options):
        try:
            report = sync_tools(Path(options["file"]) if options.get("file") else None)
        except GantzFileError as exc:
            problems = "\n".join(f"  {p.tool or '(file)'}: {p.field}: {p.message}" for p in exc.problems)
            raise CommandError(
                f"The Gantz file has {len(exc.problems)} problem(s); nothing was loaded:\n{problems}"
            ) from exc
        for action in ("created", "updated", "unchanged", "deactivated"):
            if report[action]:
                self.stdout.write(f"{action}: {', '.join(report[action])}")
