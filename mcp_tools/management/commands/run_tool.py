"""``python manage.py run_tool NAME``: run a tool the way Gantz calls it.

Gantz runs each tool's script with every parameter in an environment variable
``GANTZ_ARG_<NAME>`` (and by ``{{name}}`` substitution in args), takes the
script's stdout and stderr as the tool's result, and treats a non-zero exit
as an error. So this command reads parameters from those variables (and from
``--param name=value`` / ``--params JSON``), prints the result JSON on stdout
and nothing else, and on failure exits non-zero with one line on stderr::

    GANTZ_ARG_URL=https://example.com python manage.py run_tool summarize
    python manage.py run_tool generate_report --params '{"data": {"a": 1}}' --stream

The execution is recorded like any other (as ``--user``, default
``settings.RUN_TOOL_USER``), through the same service path, and run by an
engine in this process (``engine.runner.run_here``): no worker is needed.

Gantz kills a script once its ``timeout`` (the same gantz.yaml value as the
tool's ``timeout``) has passed since the spawn, and a killed run would leave
its execution ``running`` until a reaper noticed. So a ``Deadline`` watchdog
cancels the execution a little before that (cancelled, counted as such) and
the command exits with ``error: timeout: ...``.
"""

from __future__ import annotations

import atexit
import gc
import json
import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from mcp_tools import selectors, services
from mcp_tools.engine.loop import stop_engine
from mcp_tools.engine.runner import run_here
from mcp_tools.errors import ServiceError
from mcp_tools.models import Tool, ToolExecution
from mcp_tools.tools.registry import resolve_name

EXIT_FAILED = 1
EXIT_USAGE = 2
# The watchdog fires this much before the tool's timeout: the cancel and the exit take a moment
# (under CPU load, a second or two).
TIMEOUT_MARGIN_S = 3.0
TIMEOUT_MARGIN_RATIO = 0.15
# How long the command lets its engine finish the runs' writes when it exits.
ENGINE_STOP_GRACE_S = 5.0


def process_age_s() -> float:
    """Seconds since this process was spawned, where Gantz's clock starts (Linux /proc; else 0)."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        uptime_s = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime_s - int(fields[19]) / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


class Deadline:
    """Cancels the execution before Gantz's timeout kills the process."""

    def __init__(self, *, tool: Tool, user, execution_id: str) -> None:
        self.tool = tool
        self.user = user
        self.execution_id = execution_id
        self.expired = False
        budget_s = tool.timeout - max(TIMEOUT_MARGIN_S, TIMEOUT_MARGIN_RATIO * tool.timeout)
        self._timer = threading.Timer(max(0.0, budget_s - process_age_s()), self._expire)
        self._timer.daemon = True

    def __enter__(self) -> Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._timer.cancel()

    def _expire(self) -> None:
        self.expired = True
        services.execution_cancel(user=self.user, execution_id=self.execution_id)


def coerce(value: str, schema: dict[str, Any]) -> Any:
    """Environment variables and --param are strings; the schema says what they mean."""
    if schema.get("type") in ("object", "array", "number", "integer", "boolean", "null"):
        try:
            return json.loads(value)
        except ValueError:
            return value  # let schema validation say what is wrong
    return value


def collect_parameters(tool: Tool, *, params_json: str | None, pairs: list[str]) -> dict[str, Any]:
    properties = (tool.parameters_schema or {}).get("properties", {})
    parameters: dict[str, Any] = {}
    for name, schema in properties.items():
        env_value = os.environ.get(f"GANTZ_ARG_{name.upper()}")
        if env_value is not None:
            parameters[name] = coerce(env_value, schema)
    if params_json:
        try:
            given = json.loads(params_json)
        except ValueError as exc:
            raise CommandError(f"--params is not valid JSON: {exc}") from exc
        if not isinstance(given, dict):
            raise CommandError("--params must be a JSON object.")
        parameters.update(given)
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise CommandError(f"--param needs name=value, got {pair!r}.")
        parameters[name] = coerce(value, properties.get(name, {}))
    return parameters


class Command(BaseCommand):
    help = "Run a tool as Gantz does: parameters from GANTZ_ARG_*, result JSON on stdout."

    def add_arguments(self, parser):
        parser.add_argument("tool", help="Tool name, or the word gantz.yaml passes after run_tool.")
        parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
        parser.add_argument("--params", help="All parameters as one JSON object.")
        parser.add_argument("--user", default=None, help="Record the execution as this user.")
        parser.add_argument("--stream", action="store_true", help="Show the text live on stderr.")
        parser.add_argument("--no-cache", action="store_true", help="Do not answer from the result cache.")

    def handle(self, *args, **options):
        # The interpreter's last collections over everything Django and the SDKs loaded took
        # 0.4-1.5 s after the result was printed (seconds under load), time Gantz's timeout counts;
        # frozen objects are skipped: exit in ~0.1 s. (Registered last, so it runs first at exit.)
        atexit.register(gc.freeze)
        if options["verbosity"] < 2:
            logging.disable(logging.CRITICAL)  # Gantz takes stderr as part of the result
        try:
            execution = self.run(options)
        except (ServiceError, CommandError) as exc:
            self.fail(getattr(exc, "code", "usage"), str(exc), EXIT_USAGE)
        if execution.status != ToolExecution.Status.COMPLETED:
            self.fail(
                execution.error_code or execution.status,
                execution.error or f"Execution {execution.status}.",
                EXIT_FAILED,
            )
        sys.stdout.write(json.dumps(execution.result, ensure_ascii=False) + "\n")

    def run(self, options) -> ToolExecution:
        user = self.user(options["user"])
        tool = selectors.tool_get_usable(user=user, name=resolve_name(options["tool"]))
        parameters = collect_parameters(tool, params_json=options["params"], pairs=options["param"])
        execution = services.execution_prepare(user=user, tool_name=tool.name, parameters=parameters)
        if options["no_cache"] or not services.execution_answer_from_cache(execution):
            with Deadline(tool=tool, user=user, execution_id=str(execution.pk)) as deadline:
                try:
                    run_here(str(execution.pk), listener=self.show_text if options["stream"] else None)
                finally:
                    stop_engine(grace_s=ENGINE_STOP_GRACE_S)
            if deadline.expired:
                self.fail(
                    "timeout",
                    f"{tool.name} did not finish within its {tool.timeout}s timeout; the execution was cancelled.",
                    EXIT_FAILED,
                )
        if options["stream"]:
            sys.stderr.write("\n")
        execution.refresh_from_db()
        return execution

    def user(self, username: str | None):
        username = username or settings.RUN_TOOL_USER
        user, created = get_user_model().objects.get_or_create(username=username)
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        return user

    def show_text(self, event: dict) -> None:
        if event["type"] == "execution.delta":
            sys.stderr.write(event["text"])
            sys.stderr.flush()
        elif event["type"] == "execution.status" and event["status"] == "retrying":
            sys.stderr.write(f"\n[retrying: {event.get('reason')}]\n")

    def fail(self, code: str, message: str, exit_code: int):
        first_line = " ".join(str(message).split())
        sys.stderr.write(f"error: {code}: {first_line}\n")
        sys.exit(exit_code)
