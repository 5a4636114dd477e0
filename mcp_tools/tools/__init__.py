"""Tools: the public API for adding your own, and the project's three.

    from mcp_tools.tools import ToolContext, tool      # see api.py for the whole story

The project's tools are written with the same API as yours:
``generate_report`` (report.py), ``summarize_content`` (summarize.py) and
``my_usage`` (usage.py). Importing this package registers them.
"""

from __future__ import annotations

from .api import ToolSpec, tool
from .context import SyncToolContext, ToolContext

__all__ = ["SyncToolContext", "ToolContext", "ToolSpec", "tool"]

from . import report, summarize, usage  # noqa: E402,F401  (registers the project's tools)
