"""What the test Gantz file (``gantz_fixture.yaml``) and the test app need, in one place.

Both topologies load the same file, with the same ``${VAR}`` values, and the
same app; the test process and the production stack's processes read them
from here.
"""

from __future__ import annotations

from pathlib import Path

GANTZ_FIXTURE = Path(__file__).resolve().parent / "gantz_fixture.yaml"
WORKDIR = GANTZ_FIXTURE.parent / "workdir"
TOOL_APP = "tests.tool_app"

# ${VAR}s of the file. The token must never be stored or shown: tests search the
# database and every answer for it.
GREETING = "greetings-from-the-environment"
TOKEN = "tok-3f9a1c7e-never-stored"


def tool_env(http_target_url: str) -> dict[str, str]:
    """The variables a service running the test tools needs (besides its own settings)."""
    return {
        "GANTZ_CONFIG": str(GANTZ_FIXTURE),
        "MCP_EXTRA_APPS": TOOL_APP,
        "TOOL_HTTP_URL": http_target_url,
        "TEST_TOOL_GREETING": GREETING,
        "TEST_TOOL_TOKEN": TOKEN,
    }
