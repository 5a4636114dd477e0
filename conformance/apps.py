from django.apps import AppConfig


class ConformanceConfig(AppConfig):
    """The fixture app (conformance mode only): its ``tools.py`` registers the suite's fixture tools,
    ``interactive`` the multi-round-trip preludes."""

    name = "conformance"
    verbose_name = "MCP conformance fixture"

    def ready(self) -> None:
        from . import interactive  # noqa: F401  (registers the multi-round-trip preludes)
