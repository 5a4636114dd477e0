from django.apps import AppConfig


class ToolAppConfig(AppConfig):
    """An ordinary app that brings tools of its own (``tools.py``), as a team's project would."""

    name = "tests.tool_app"
    label = "tool_app"
    verbose_name = "Test tools"
