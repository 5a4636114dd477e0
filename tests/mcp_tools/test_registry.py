"""gantz.yaml → Tool rows."""
from __future__ import annotations

import pytest

from mcp_tools.models import Tool, ToolUsageStats
from mcp_tools.registry import RegistryError, build_schema, parse_timeout, resolve_tool_name, sync_tools

pytestmark = pytest.mark.django_db


def test_sync_builds_json_schema_from_gantz_parameters(db):
    sync_tools()
    tool = Tool.objects.get(name="summarize_content")
    assert tool.parameters_schema == {
        "type": "object", "additionalProperties": False, "required": ["url"],
        "properties": {"url": {"type": "string", "description": "The http(s) address of the page to summarize"}},
    }
    assert tool.timeout == 60 and tool.is_active
    assert ToolUsageStats.objects.filter(tool=tool).exists()


def test_sync_is_idempotent(db):
    assert sorted(sync_tools()["created"]) == ["generate_report", "summarize_content"]
    second = sync_tools()
    assert second["created"] == [] and second["updated"] == [] and sorted(second["unchanged"]) == [
        "generate_report", "summarize_content"]
    assert Tool.objects.count() == 2


def test_tools_gone_from_the_file_are_deactivated_not_deleted(db, tmp_path):
    sync_tools()
    only_one = tmp_path / "gantz.yaml"
    only_one.write_text("name: x\ntools:\n  - name: generate_report\n    description: d\n"
                        "    parameters:\n      - name: data\n        type: object\n        required: true\n")
    report = sync_tools(only_one)
    assert report["deactivated"] == ["summarize_content"] and report["updated"] == ["generate_report"]
    assert Tool.objects.get(name="summarize_content").is_active is False
    assert sorted(sync_tools()["updated"]) == ["generate_report", "summarize_content"]  # back as in the file
    assert Tool.objects.get(name="summarize_content").is_active


def test_schema_types_required_and_defaults():
    schema = build_schema([{"name": "n", "type": "integer", "default": 3}, {"name": "b", "type": "bool",
                                                                            "required": True}])
    assert schema["properties"] == {"n": {"type": "integer", "default": 3}, "b": {"type": "boolean"}}
    assert schema["required"] == ["b"]


@pytest.mark.parametrize("value,seconds", [("30s", 30), ("2m", 120), (45, 45), ("1h", 3600), (None, 60)])
def test_timeouts_in_gantz_notation(value, seconds):
    assert parse_timeout(value, 60) == seconds


def test_bad_definitions_say_what_is_wrong(tmp_path):
    bad = tmp_path / "gantz.yaml"
    bad.write_text("name: x\ntools:\n  - name: t\n    parameters:\n      - name: p\n        type: tensor\n")
    with pytest.raises(RegistryError, match="unknown type 'tensor'"):
        sync_tools(bad)
    with pytest.raises(RegistryError, match="not found"):
        sync_tools(tmp_path / "missing.yaml")


def test_run_tool_accepts_the_articles_short_names():
    assert resolve_tool_name("summarize") == "summarize_content"
    assert resolve_tool_name("report") == "generate_report"
    assert resolve_tool_name("generate_report") == "generate_report"
