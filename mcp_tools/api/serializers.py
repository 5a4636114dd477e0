"""The article's serializers (step 6), with what streaming and accounting add.

``ToolSerializer`` nests ``ToolUsageStatsSerializer`` as the article does, so
``GET /api/tools/{id}/`` carries the tool's statistics, now with token usage
and the cancelled/cached counts. ``ToolExecuteRequestSerializer`` is the body
of ``execute`` and ``execute_async``::

    {"parameters": {"data": {"sales": [3, 5]}}, "use_cache": false}

``parameters`` is only checked to be a JSON object here; the tool's JSON
Schema is applied by the service, whose ``invalid_parameters`` error lists
every problem.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from mcp_tools import jsonguard
from mcp_tools.models import Tool, ToolExecution, ToolUsageStats


class StoredJSONField(serializers.JSONField):
    """A JSON column as any version stored it: what older versions let in (lone surrogates,
    infinities, deep nesting) is shown cleaned instead of failing the whole answer."""

    def to_representation(self, value: Any) -> Any:
        return jsonguard.displayable(super().to_representation(value))


class StoredTextField(serializers.CharField):
    def to_representation(self, value: Any) -> str | None:
        return jsonguard.displayable_text(super().to_representation(value))


class ToolUsageStatsSerializer(serializers.ModelSerializer):
    success_rate = serializers.FloatField(read_only=True)
    average_duration_ms = serializers.FloatField(read_only=True)

    class Meta:
        model = ToolUsageStats
        fields = [
            "total_executions",
            "successful_executions",
            "failed_executions",
            "cancelled_executions",
            "cached_executions",
            "success_rate",
            "average_duration_ms",
            "input_tokens",
            "output_tokens",
            "last_execution",
        ]


class ToolSerializer(serializers.ModelSerializer):
    stats = ToolUsageStatsSerializer(read_only=True, allow_null=True)

    class Meta:
        model = Tool
        fields = ["id", "name", "description", "parameters_schema", "timeout", "created_at", "stats"]


class ToolExecutionSerializer(serializers.ModelSerializer):
    tool_name = serializers.CharField(source="tool.name", read_only=True)
    parameters = StoredJSONField(read_only=True)
    result = StoredJSONField(read_only=True, allow_null=True)
    error = StoredTextField(read_only=True, allow_null=True)

    class Meta:
        model = ToolExecution
        fields = [
            "id",
            "tool_name",
            "parameters",
            "result",
            "error",
            "status",
            "duration_ms",
            "created_at",
            "completed_at",
            # Beyond the article: why it failed, which attempt, cache and token usage.
            "error_code",
            "attempt",
            "cached",
            "input_tokens",
            "output_tokens",
        ]
        read_only_fields = fields


class ToolExecuteRequestSerializer(serializers.Serializer):
    parameters = serializers.JSONField(
        required=False, default=dict, help_text="The tool's parameters, checked against its parameters_schema."
    )
    async_execution = serializers.BooleanField(
        required=False,
        default=False,
        help_text="On execute/: queue the run and answer 202 like execute_async/ instead of waiting.",
    )
    use_cache = serializers.BooleanField(
        required=False,
        default=True,
        help_text="Answer from a cached result of the same tool and parameters when there is one.",
    )

    def validate_parameters(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        return value


class ExecutionAcceptedSerializer(serializers.Serializer):
    execution_id = serializers.UUIDField()
    task_id = serializers.CharField(allow_null=True)


class ExecutionStatusSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=ToolExecution.Status.choices)
    result = serializers.JSONField(allow_null=True)
    error = serializers.CharField(allow_null=True)


# --- Error bodies, for the OpenAPI schema (see exceptions.py).


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.JSONField(required=False)
    retry_after = serializers.FloatField(required=False)


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


class ExecutionErrorSerializer(ErrorSerializer):
    execution = ToolExecutionSerializer()
