"""A request repeated with the same idempotency key attaches to the first one's execution."""

from __future__ import annotations

import pytest
from django.utils import timezone

from mcp_tools import services
from mcp_tools.errors import IdempotencyConflict, InvalidMessage
from mcp_tools.models import ToolExecution

pytestmark = pytest.mark.django_db(transaction=True)
PARAMETERS = {"data": {"sales": [1, 2]}}


def start(user, key, parameters=PARAMETERS):
    return services.execution_start_uncached(
        user=user, tool_name="generate_report", parameters=parameters, idempotency_key=key
    )


def test_the_same_key_returns_the_same_execution(tools, alice):
    first = start(alice, "k1")
    again = start(alice, "k1")
    assert again.pk == first.pk and again.reattached and not first.reattached
    assert ToolExecution.objects.filter(user=alice).count() == 1


def test_keys_are_per_user(tools, alice, bob):
    assert start(alice, "k1").pk != start(bob, "k1").pk


def test_the_same_key_for_other_parameters_is_a_conflict(tools, alice):
    start(alice, "k1")
    with pytest.raises(IdempotencyConflict):
        start(alice, "k1", {"data": {"other": 1}})
    other = start(alice, "k2", {"data": {"other": 1}})  # still working
    assert other.status == "pending" and not other.reattached


def test_an_expired_key_starts_a_new_execution(tools, alice, settings):
    first = start(alice, "k1")
    ToolExecution.objects.filter(pk=first.pk).update(
        created_at=timezone.now() - timezone.timedelta(seconds=settings.MCP_CONFIG["IDEMPOTENCY_WINDOW_S"] + 5)
    )
    second = start(alice, "k1")
    assert second.pk != first.pk
    first.refresh_from_db()
    assert first.idempotency_key is None


@pytest.mark.parametrize("key", ["", "x" * 201, 5])
def test_a_malformed_key_is_refused(tools, alice, key):
    with pytest.raises(InvalidMessage):
        start(alice, key)
