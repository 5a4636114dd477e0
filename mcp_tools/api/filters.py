"""Query filters for ``GET /api/executions/`` (django-filter)::

    GET /api/executions/?tool=generate_report&status=failed
    GET /api/executions/?tool=2&status=running&status=retrying

``tool`` takes the tool's name or id; ``status`` may repeat. An unknown
status is a 400 (``invalid_request``), not an empty page.
"""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet

from mcp_tools.models import ToolExecution


class ToolExecutionFilter(django_filters.FilterSet):
    tool = django_filters.CharFilter(method="filter_tool", help_text="The tool's name or id.")
    status = django_filters.MultipleChoiceFilter(
        choices=ToolExecution.Status.choices, help_text="One or more statuses (repeat the parameter)."
    )

    class Meta:
        model = ToolExecution
        fields = ["tool", "status"]

    def filter_tool(self, queryset: QuerySet[ToolExecution], name: str, value: str) -> QuerySet[ToolExecution]:
        if value.isdigit():
            return queryset.filter(tool_id=int(value))
        return queryset.filter(tool__name=value)
