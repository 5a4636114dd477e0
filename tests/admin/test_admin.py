"""The admin: the article's classes, readable records, actions through the service path, the monitor page."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from mcp_tools import services
from mcp_tools.events import get_event_log
from mcp_tools.models import Tool, ToolExecution, ToolUsageStats
from tests.conftest import run_now
from tests.stack import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

CHANGELIST = "/admin/mcp_tools/toolexecution/"


@pytest.fixture
def admin_client(db) -> Client:
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-root")
    client = Client()
    client.force_login(user)
    client.user = user
    return client


def finished(user, parameters: dict) -> ToolExecution:
    return run_now(user, "generate_report", parameters)


def stuck_pending(user) -> ToolExecution:
    """Queued, never picked up by a worker (no worker consumes in these tests)."""
    return services.execution_prepare(user=user, tool_name="generate_report", parameters={"data": {"stuck": True}})


def test_changelist_filters_by_status_tool_and_date_and_searches(tools, alice, bob, admin_client):
    mine = finished(alice, {"data": {"a": 1}})
    theirs = finished(bob, {"data": {"b": 2}})
    pending = stuck_pending(alice)
    tool = Tool.objects.get(name="generate_report")

    def listed(query: str) -> set[str]:
        response = admin_client.get(CHANGELIST + query)
        assert response.status_code == 200, query
        return {str(e.pk) for e in response.context["cl"].result_list}

    assert listed("") == {str(mine.pk), str(theirs.pk), str(pending.pk)}
    assert listed("?status__exact=pending") == {str(pending.pk)}
    assert listed(f"?tool__id__exact={tool.pk}&status__exact=completed") == {str(mine.pk), str(theirs.pk)}
    assert listed("?created_at__gte=2000-01-01T00:00:00%2B00:00&created_at__lt=2000-01-02T00:00:00%2B00:00") == set()
    assert listed(f"?created_at__year={mine.created_at.year}") == {str(mine.pk), str(theirs.pk), str(pending.pk)}
    assert listed("?q=bob") == {str(theirs.pk)}
    assert listed(f"?q={mine.pk}") == {str(mine.pk)}
    assert listed("?q=no-such-thing") == set()


def test_execution_page_is_read_only_and_shows_json_readably_and_escaped(tools, alice, admin_client):
    execution = finished(alice, {"data": {"note": "<script>alert(1)</script>"}})
    response = admin_client.get(f"{CHANGELIST}{execution.pk}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
    assert '<pre class="mcp-json"' in page
    assert "&quot;type&quot;: &quot;execution.completed&quot;" in page  # the event log, indented JSON
    assert 'name="_save"' not in page  # a record, not a form
    assert admin_client.get(CHANGELIST + "add/").status_code == 403


def test_running_execution_page_shows_its_live_event_log(tools, alice, admin_client):
    execution = stuck_pending(alice)
    page = admin_client.get(f"{CHANGELIST}{execution.pk}/change/").content.decode()
    assert "&quot;status&quot;: &quot;pending&quot;" in page


def test_cancel_action_cancels_queued_executions_through_the_service(tools, alice, admin_client):
    running = stuck_pending(alice)
    done = finished(alice, {"data": {"x": 1}})
    response = admin_client.post(
        CHANGELIST, {"action": "cancel_executions", "_selected_action": [str(running.pk), str(done.pk)]}, follow=True
    )
    assert response.status_code == 200
    assert "Cancelled 1 execution(s). 1 had already ended" in response.content.decode()
    running.refresh_from_db()
    assert running.status == "cancelled" and running.events[-1]["type"] == "execution.cancelled"
    assert get_event_log().facts(str(running.pk)).ended
    done.refresh_from_db()
    assert done.status == "completed"
    assert ToolUsageStats.objects.get(tool__name="generate_report").cancelled_executions == 1


def test_rerun_action_starts_the_same_tool_and_parameters_as_the_staff_user(tools, alice, admin_client, worker):
    original = finished(alice, {"data": {"rerun": 1}})
    pending = stuck_pending(alice)
    response = admin_client.post(
        CHANGELIST, {"action": "rerun_executions", "_selected_action": [str(original.pk), str(pending.pk)]}, follow=True
    )
    assert "Started 1 new execution(s) as root." in response.content.decode()
    rerun = ToolExecution.objects.exclude(pk__in=[original.pk, pending.pk]).get()
    assert rerun.user == admin_client.user and rerun.parameters == original.parameters
    assert rerun.tool_id == original.tool_id
    wait_until(lambda: ToolExecution.objects.get(pk=rerun.pk).is_terminal, timeout=20, what="the re-run to end")
    rerun.refresh_from_db()
    assert rerun.status == "completed" and rerun.cached is False


def test_rerun_of_a_now_inactive_tool_is_reported_not_started(tools, alice, admin_client):
    original = finished(alice, {"data": {"y": 2}})
    Tool.objects.filter(name="generate_report").update(is_active=False)
    response = admin_client.post(
        CHANGELIST, {"action": "rerun_executions", "_selected_action": [str(original.pk)]}, follow=True
    )
    page = response.content.decode()
    assert "Started 0 new execution(s)" in page and "Not re-run" in page
    assert ToolExecution.objects.count() == 1


def test_stats_admin_lists_counters_read_only(tools, alice, admin_client):
    finished(alice, {"data": {"z": 3}})
    response = admin_client.get("/admin/mcp_tools/toolusagestats/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "100.0%" in page and "generate_report" in page
    stats = ToolUsageStats.objects.get(tool__name="generate_report")
    assert admin_client.get(f"/admin/mcp_tools/toolusagestats/{stats.pk}/change/").status_code == 200
    assert (
        admin_client.post(f"/admin/mcp_tools/toolusagestats/{stats.pk}/change/", {"total_executions": 99}).status_code
        == 403
    )


def test_tool_admin_keeps_the_articles_list(tools, admin_client):
    response = admin_client.get("/admin/mcp_tools/tool/?q=report")
    assert response.status_code == 200
    assert [t.name for t in response.context["cl"].result_list] == ["generate_report"]


def test_monitor_page_is_for_monitoring_staff_and_linked_from_the_admin_index(operator, alice):
    client = Client()
    client.force_login(operator)
    index = client.get("/admin/")
    assert index.status_code == 200 and 'href="/admin/monitor/"' in index.content.decode()
    page = client.get("/admin/monitor/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-socket-path="/ws/monitor/"' in html and "mcp_tools/monitor.js" in html
    client.force_login(alice)
    assert client.get("/admin/monitor/")["Location"].startswith("/admin/login/")
    assert Client().get("/admin/monitor/")["Location"].startswith("/admin/login/")
