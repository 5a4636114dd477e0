from django.apps import AppConfig


class ConformanceConfig(AppConfig):
    """The fixture app; ``ready`` adds its tools to the engine's registry and its prompts/resources to MCP."""

    name = "conformance"
    verbose_name = "MCP conformance fixture"

    def ready(self) -> None:
        from mcp_tools.tools import IMPLEMENTATIONS, STREAMED_FIELD

        from . import interactive  # noqa: F401  (registers the multi-round-trip preludes)
        from .definitions import FIXTURES

        # Until the engine discovers @tool functions itself, the fixture adds its bodies by name.
        for fixture in FIXTURES:
            IMPLEMENTATIONS[fixture.name] = fixture.run
            STREAMED_FIELD[fixture.name] = "text"
