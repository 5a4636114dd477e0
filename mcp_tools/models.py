"""The article's three models, plus what streaming needs.

``ToolExecution`` keeps, besides the article's fields, the attempt number,
token usage, whether the result came from the cache, and ``events``: the full
event log (PROTOCOL.md's execution events with their ``seq``), saved in the
same write that stores the result. While an execution runs its log lives in
Redis (or memory); see ``mcp_tools/events/log.py``.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Tool(models.Model):
    """A tool's record: a copy of its definition (Python ``@tool`` or gantz.yaml),
    written by ``manage.py sync_tools``; executions and statistics point here."""

    class Kind(models.TextChoices):
        PYTHON = "python", "Python function"
        SCRIPT = "script", "Gantz script"
        HTTP = "http", "Gantz HTTP call"

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField()
    parameters_schema = models.JSONField(default=dict)
    is_active = models.BooleanField(default=True)
    timeout = models.IntegerField(default=60, help_text="Seconds an execution may run.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.PYTHON)
    output_schema = models.JSONField(default=dict, blank=True, help_text="JSON Schema of the result object.")
    output_field = models.CharField(
        max_length=100, default="output", help_text="The result field that holds the streamed text."
    )
    cacheable = models.BooleanField(default=False, help_text="Pure: equal parameters give an equal result.")
    repeatable = models.BooleanField(default=True, help_text="Safe to run again after a worker was lost.")
    access_groups = models.JSONField(
        default=list, blank=True, help_text="Django groups allowed to use it (empty: everyone)."
    )
    access_permission = models.CharField(
        max_length=200, blank=True, default="", help_text="A permission (app_label.codename) needed to use it."
    )
    definition = models.JSONField(
        default=dict, blank=True, help_text="The definition as written (environment values unexpanded)."
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ToolExecution(models.Model):
    """One run of a tool for one user, from ``pending`` to a terminal state."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        RETRYING = "retrying", "Retrying"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    ACTIVE_STATUSES = (Status.PENDING, Status.RUNNING, Status.RETRYING)
    TERMINAL_STATUSES = (Status.COMPLETED, Status.FAILED, Status.CANCELLED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tool = models.ForeignKey(Tool, on_delete=models.CASCADE, related_name="executions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tool_executions")
    parameters = models.JSONField(default=dict)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(null=True, blank=True)
    error_code = models.CharField(max_length=64, blank=True, default="")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True)
    celery_task_id = models.CharField(max_length=100, null=True, blank=True)
    duration_ms = models.IntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # Streaming additions.
    attempt = models.PositiveIntegerField(default=0, help_text="1 for the first run, +1 per retry.")
    cached = models.BooleanField(default=False)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    events = models.JSONField(default=list, blank=True, help_text="The event log, saved when the execution ends.")
    worker = models.CharField(
        max_length=200, blank=True, default="", help_text="The worker engine running the current attempt."
    )
    epoch = models.CharField(
        max_length=32,
        blank=True,
        default="",
        help_text="The event log's epoch: changes if the live log was lost and restarted.",
    )
    idempotency_key = models.CharField(
        max_length=200,
        null=True,
        blank=True,
        help_text="The client's key: a repeated request attaches to this execution.",
    )
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="Kept until then (a client's requested retention), else the default."
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "-created_at"]),
            models.Index(fields=["status", "created_at"]),
            # A user's active executions, however long their history: the fair-share claim counts them
            # per candidate, the concurrency limit counts them per start (ACTIVE_STATUSES, spelled out).
            models.Index(
                fields=["user", "created_at"],
                condition=models.Q(status__in=["pending", "running", "retrying"]),
                name="execution_active_by_user",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="unique_idempotency_key_per_user",
            ),
        ]
        permissions = [
            ("view_all_executions", "Can monitor every user's executions"),
            ("cancel_any_execution", "Can cancel any user's execution"),
        ]

    # Set by the services: True when a repeated request (same idempotency key) got this earlier execution.
    reattached = False

    def __str__(self) -> str:
        return f"{self.tool.name} - {self.status}"

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL_STATUSES


class ToolUsageStats(models.Model):
    """Aggregate tool usage statistics, updated with F() expressions only."""

    tool = models.OneToOneField(Tool, on_delete=models.CASCADE, related_name="stats")
    total_executions = models.IntegerField(default=0)
    successful_executions = models.IntegerField(default=0)
    failed_executions = models.IntegerField(default=0)
    cancelled_executions = models.IntegerField(default=0)
    cached_executions = models.IntegerField(default=0)
    total_duration_ms = models.BigIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    last_execution = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "tool usage stats"

    def __str__(self) -> str:
        return f"stats for {self.tool}"

    @property
    def success_rate(self) -> float:
        if self.total_executions == 0:
            return 0
        return self.successful_executions / self.total_executions

    @property
    def average_duration_ms(self) -> float:
        if self.successful_executions == 0:
            return 0
        return self.total_duration_ms / self.successful_executions
