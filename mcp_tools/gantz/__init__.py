"""Gantz tools: a ``gantz.yaml`` of scripts and HTTP calls, run safely by the service.

A Gantz file (gantz-cli's format, ``GANTZ.md``) declares tools; this package
loads it whole or not at all, and runs its tools as asyncio coroutines::

    gantz = load_gantz_file(Path("gantz.yaml"))            # or GantzFileError listing every problem
    tool = gantz.tools[0]
    schema = tool.parameters_schema()                      # the service validates with it
    result = await run_script(tool, params, emit=send, environ=os.environ)
    result = await run_http(tool, params, emit=send, environ=os.environ, allow_private=False)

What differs from gantz-cli, each for safety (the modules say how):

- a parameter value is data, never code: one argv element, a shell variable
  reference (``shell.py``), percent-encoded in URLs, JSON-escaped in JSON bodies;
- the process gets a minimal environment, never the service's secrets, and
  ``${VAR}`` is expanded at run time only, never stored (``environment.py``);
- the whole process tree ends with the run, even if the worker is killed
  (``process.py``); HTTP calls go through the SSRF guard (``http_request.py``).

Modules: ``loader`` (+ ``specs``, ``checks``, ``yamlfile``), ``model``,
``durations``, ``templates``, ``shell``, ``environment``, ``jsonpath``,
``script`` (+ ``process``), ``http_request``, ``conf`` (settings).
"""

from __future__ import annotations

import logging

from .durations import DurationError, parse_duration
from .environment import (
    SERVICE_SECRET_NAMES,
    SERVICE_SECRET_PATTERNS,
    is_service_secret,
)
from .http_request import run_http
from .loader import load_gantz_file
from .model import (
    GantzFile,
    GantzFileError,
    GantzParameter,
    GantzTool,
    HttpSpec,
    Problem,
    ScriptSpec,
)
from .script import run_script

logger = logging.getLogger(__name__)

__all__ = [
    "SERVICE_SECRET_NAMES",
    "SERVICE_SECRET_PATTERNS",
    "DurationError",
    "GantzFile",
    "GantzFileError",
    "GantzParameter",
    "GantzTool",
    "HttpSpec",
    "Problem",
    "ScriptSpec",
    "is_service_secret",
    "load_gantz_file",
    "parse_duration",
    "run_http",
    "run_script",
]
