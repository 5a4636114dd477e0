"""The registry: Python tools and the Gantz file → ``ToolSpec``s → ``Tool`` rows."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mcp_tools.errors import ToolError
from mcp_tools.models import Tool, ToolUsageStats
from mcp_tools.tools.context import ToolContext
from mcp_tools.tools.registry import all_tools, resolve_name, sync_tools, tool_spec
from tests.stack import ROOT

pytestmark = pytest.mark.django_db

PROJECT_TOOLS = ["generate_report", "my_usage", "service_health", "summarize_content"]


def test_sync_builds_the_json_schema_from_the_python_type_hints(db):
    sync_tools()
    tool = Tool.objects.get(name="summarize_content")
    assert tool.parameters_schema == {
        "type": "object",
        "additionalProperties": False,
        "required": ["url"],
        "properties": {"url": {"type": "string", "description": "The http(s) address of the page to summarize"}},
    }
    assert tool.timeout == 60 and tool.is_active and tool.kind == "python" and tool.cacheable
    assert tool.output_field == "summary" and "summary" in tool.output_schema["required"]
    assert ToolUsageStats.objects.filter(tool=tool).exists()


def test_sync_is_idempotent(db):
    assert sorted(sync_tools()["created"]) == PROJECT_TOOLS
    second = sync_tools()
    assert second["created"] == [] and second["updated"] == [] and sorted(second["unchanged"]) == PROJECT_TOOLS
    assert Tool.objects.count() == len(PROJECT_TOOLS)


def test_a_tool_no_source_defines_any_more_is_deactivated_not_deleted(db):
    sync_tools()
    Tool.objects.create(name="retired", description="gone from every source")
    report = sync_tools()
    assert report["deactivated"] == ["retired"]
    assert Tool.objects.get(name="retired").is_active is False


def test_the_gantz_entries_of_python_tools_bind_to_them_and_keep_their_run_tool_word(db):
    specs = all_tools()
    assert specs["summarize_content"].kind == "python"
    assert "summarize" in specs["summarize_content"].aliases
    assert specs["summarize_content"].definition["gantz"]["script"]["args"] == ["manage.py", "run_tool", "summarize"]


def test_run_tool_accepts_the_articles_short_names():
    assert resolve_name("summarize") == "summarize_content"
    assert resolve_name("report") == "generate_report"
    assert resolve_name("generate_report") == "generate_report"


def test_an_apps_tools_come_and_go_with_the_app(settings):
    assert "count_to" not in all_tools()
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "tests.tool_app"]
    assert all_tools()["count_to"].definition["python"] == "tests.tool_app.tools.count_to"
    assert tool_spec("count_to") is not None
    settings.INSTALLED_APPS = [app for app in settings.INSTALLED_APPS if app != "tests.tool_app"]
    assert "count_to" not in all_tools() and tool_spec("count_to") is None


def test_mcp_extra_apps_adds_apps_from_the_environment():
    process = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "--verbosity",
            "0",
            "-c",
            "from django.conf import settings; from mcp_tools.tools.registry import all_tools; "
            "print(settings.INSTALLED_APPS[-1], sorted(all_tools())[:3])",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **{k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")},
            "MCP_EXTRA_APPS": "tests.tool_app",
            "DJANGO_SETTINGS_MODULE": "config.settings",
        },
    )
    assert process.returncode == 0, process.stderr
    assert process.stdout.split() == ["tests.tool_app", "['count_to',", "'generate_report',", "'my_usage']"]


def test_pointing_at_another_gantz_file_is_read_on_next_use(settings, tmp_path):
    assert tool_spec("other_tool") is None
    other = tmp_path / "gantz.yaml"
    other.write_text("tools: [{name: other_tool, script: {command: 'true', timeout: 500ms}}]")
    settings.GANTZ_CONFIG = other
    assert tool_spec("other_tool").kind == "script"
    report = sync_tools()
    assert "other_tool" in report["created"]
    assert Tool.objects.get(name="other_tool").timeout == 1  # seconds, rounded up: never 0


async def test_allow_private_lets_one_http_tool_past_the_guard(settings, tmp_path):
    from tests.tools.http_target import running_target

    settings.MCP_CONFIG = {**settings.MCP_CONFIG, "ALLOW_PRIVATE_URLS": False}
    with running_target() as url:
        path = tmp_path / "gantz.yaml"
        path.write_text(
            f"tools: [{{name: inside, allow_private: true, http: {{url: '{url}/items', "
            f"extract_json: 'items[0].name'}}}}, {{name: outside, http: {{url: '{url}/items'}}}}]"
        )
        specs = all_tools(path)
        context = ToolContext(
            execution_id="x",
            attempt=1,
            user=None,
            provider=None,
            send_text=lambda text: None,
            output_limit_bytes=10_000,
        )
        assert await specs["inside"].call(context, {}) == {"output": "first", "status": 200}
        with pytest.raises(ToolError) as refused:
            await specs["outside"].call(context, {})
    assert refused.value.code == "blocked_address"


BROKEN = """\
tools:
  - name: first
    script: {command: ls, timeout: 30x}
  - name: second
    parameters: [{name: city, type: place}]
    http: {url: "ftp://example.com/{{town}}"}
"""


def test_a_broken_gantz_file_loads_nothing_and_every_problem_is_named(settings, tmp_path):
    from django.core.management import call_command
    from django.core.management.base import CommandError, SystemCheckError

    sync_tools()
    broken = tmp_path / "gantz.yaml"
    broken.write_text(BROKEN)
    with pytest.raises(CommandError) as refused:
        call_command("sync_tools", "--file", str(broken))
    settings.GANTZ_CONFIG = broken
    with pytest.raises(SystemCheckError) as checked:
        call_command("check")
    for report in (str(refused.value), str(checked.value)):
        assert "first: script.timeout: '30x' is not a duration" in report
        assert "second: parameters.city.type: unknown type 'place'" in report
        assert "second: http.url: {{town}} names no parameter (parameters: city)" in report
        assert "second: http.url: 'ftp://example.com/{{town}}' is not an absolute http(s) URL" in report
    assert "4 problem(s); nothing was loaded" in str(refused.value)
    assert sorted(Tool.objects.filter(is_active=True).values_list("name", flat=True)) == PROJECT_TOOLS
