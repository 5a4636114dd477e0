"""``sync_tools`` in conformance mode: gantz.yaml's tools, then the fixture's (``definitions.py``).

Overrides ``mcp_tools``' command (the ``conformance`` app comes first in
``INSTALLED_APPS``), so ``manage.py serve`` loads the fixture with no extra step.
"""
from django.db import transaction

from mcp_tools.management.commands.sync_tools import Command as RegistryCommand
from mcp_tools.models import Tool, ToolUsageStats

from conformance.definitions import FIXTURES


class Command(RegistryCommand):
    help = RegistryCommand.help + " Conformance mode: also the suite's fixture tools."

    def handle(self, *args, **options):
        super().handle(*args, **options)
        with transaction.atomic():
            for fixture in FIXTURES:
                tool, _ = Tool.objects.update_or_create(name=fixture.name, defaults={
                    "description": fixture.description, "parameters_schema": fixture.parameters,
                    "output_schema": fixture.output, "output_field": "text", "timeout": fixture.timeout,
                    "kind": Tool.Kind.PYTHON, "is_active": True, "definition": {"mcp": {"tasks": fixture.tasks}},
                })
                ToolUsageStats.objects.get_or_create(tool=tool)
        self.stdout.write(f"fixture: {len(FIXTURES)} tools")
