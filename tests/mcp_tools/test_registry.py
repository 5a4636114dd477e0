"""The registry: Python tools and the Gantz file → ``ToolSpec``s → ``Tool`` rows."""
from __future__ import annotations

import pytest

from mcp_tools.models import Tool, ToolUsageStats
from mcp_tools.tools.registry import all_tools, resolve_name, sync_tools

pytestmark = pytest.mark.django_db

PROJECT_TOOLS = ["generate_report", "my_usage", "summarize_content"]


def test_sync_builds_the_json_schema_from_the_python_type_hints(db):
    sync_tools()
    tool = Tool.objects.get(name="summarize_content")
    assert tool.parameters_schema == {
        "type": "object", "additionalProperties": False, "required": ["url"],
        "properties": {"url": {"type": "string", "description": "The http(s) address of the page to summarize"}},
    }
    assert tool.timeout == 60 and tool.is_active and tool.kind == "python" and tool.cacheable
    assert tool.output_field == "summary" and "summary" in tool.output_schema["required"]
    assert ToolUsageStats.objects.filter(tool=tool).exists()


def test_sync_is_idempotent(db):
    assert sorted(sync_tools()["created"]) == PROJECT_TOOLS
    second = sync_tools()
    assert second["created"] == [] and second["updated"] == [] and sorted(second["unchanged"]) == PROJECT_TOOLS
    assert Tool.objects.count() == 3


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
