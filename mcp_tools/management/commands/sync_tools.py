"""``python manage.py sync_tools``: make the Tool table match gantz.yaml."""
from django.core.management.base import BaseCommand, CommandError

from mcp_tools.registry import RegistryError, sync_tools


class Command(BaseCommand):
    help = "Load the tool definitions of gantz.yaml into Tool rows (idempotent; removed tools are deactivated)."

    def add_arguments(self, parser):
        parser.add_argument("--file", help="Path to a Gantz file (default: settings.GANTZ_CONFIG).")

    def handle(self, *args, **options):
        try:
            report = sync_tools(options.get("file"))
        except RegistryError as exc:
            raise CommandError(str(exc)) from exc
        for action in ("created", "updated", "unchanged", "deactivated"):
            if report[action]:
                self.stdout.write(f"{action}: {', '.join(report[action])}")
