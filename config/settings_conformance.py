"""The conformance mode: the embedded default serving the MCP conformance suite's fixture.

    DJANGO_SETTINGS_MODULE=config.settings_conformance python manage.py migrate
    DJANGO_SETTINGS_MODULE=config.settings_conformance python manage.py serve --port 8123 --no-demo-user

``./dev conformance`` does exactly that on a free port and runs
``@modelcontextprotocol/conformance`` against ``/mcp`` (docs/mcp.md).

On top of ``config.settings`` (embedded default underneath), this module

* installs the ``conformance`` app: the suite's fixture tools, prompts and
  resources, whose tools run as ordinary executions (rows, events, stats);
* lets MCP requests without a token act as one local user,
  ``MCP_ANONYMOUS_USER`` — only here, and only for requests that reach a
  loopback address (``mcp_tools/mcp/auth.py``); ``config.settings`` has no
  such setting, and the MCP endpoint refuses to start with it anywhere the
  ``conformance`` app is not installed;
* lifts the per-user limits a suite run would hit (every call comes from that
  one user, dozens a minute).
"""

from __future__ import annotations

from .settings import *  # noqa: F403
from .settings import INSTALLED_APPS, MCP_CONFIG, PRODUCTION

if PRODUCTION:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("config.settings_conformance runs on the embedded default only; unset REDIS_URL.")

# First, so its sync_tools (gantz.yaml plus the fixture tools) is the one `serve` runs.
INSTALLED_APPS = ["conformance", *INSTALLED_APPS]

MCP_ANONYMOUS_USER = "conformance"

MCP_CONFIG = {**MCP_CONFIG, "RATE_LIMIT_PER_MINUTE": 100_000, "MAX_CONCURRENT_EXECUTIONS": 1_000}
# Tasks the suite leaves parked on input (and 60 s computations it cancels) each hold a worker thread.
CELERY_WORKER_CONCURRENCY = 16
LLM_PROVIDER = "offline"
OFFLINE_DELAY_S = 0.0
# The fixture's prompts, resources and completions (the project itself serves tools only).
MCP_SERVER_CONTRIBUTIONS = ["conformance.surface.contribute"]
