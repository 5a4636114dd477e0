"""The admin and its live monitor in a real browser (headless Chromium, Playwright) on the production stack.

A staff user allowed to view all executions logs in through /admin/login/ and opens the monitor; an
execution started over the REST API with a token appears on the page, runs
and ends there, without a reload, and the tool's counters and charts move.
The admin's pages fit 1280 px and load without a 404 (favicon included).
Screenshots go to test-artifacts/ (docs/ has tools/screenshot.py's).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import REPORT_PARAMETERS, token_headers
from tests.conftest import make_user

pytestmark = [pytest.mark.production, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def page() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(20_000)
            page.failed_requests = []
            page.on(
                "response",
                lambda response: (
                    response.status >= 400 and page.failed_requests.append(f"{response.status} {response.url}")
                ),
            )
            yield page
        finally:
            browser.close()


@pytest.fixture
def superuser(db):
    """Staff with every permission: the executions list needs the view permission."""
    user = make_user("root", staff=True)
    user.is_superuser = True
    user.save(update_fields=["is_superuser"])
    return user


def admin_log_in(page, stack, user, *, then: str) -> None:
    page.goto(f"{stack.http_url}/admin/login/?next={then}")
    page.fill("#id_username", user.username)
    page.fill("#id_password", "pw-" + user.username)
    page.click("input[type=submit]")
    page.wait_for_url(f"**{then}")


def start_report(stack, user, data: dict) -> str:
    response = httpx.post(
        f"{stack.http_url}/api/tools/generate_report/execute_async/",
        headers=token_headers(user),
        json={"parameters": {"data": data}, "use_cache": False},
    )
    assert response.status_code == 202, response.text
    return response.json()["execution_id"]


def chart_total(page, state: str) -> int:
    return page.evaluate("(s) => window.__monitorCharts.data.runs[s].reduce((a, b) => a + b, 0)", state)


def single_line(page, selector: str) -> bool:
    """Whether the element's text sits on one line (no wrapped letter groups)."""
    return page.evaluate(
        """(selector) => {
        const element = document.querySelector(selector);
        const range = document.createRange();
        range.selectNodeContents(element);
        const tops = new Set([...range.getClientRects()].map((rect) => Math.round(rect.top)));
        return tops.size === 1;
    }""",
        selector,
    )


def counter(page, tool: str, name: str) -> int:
    cell = page.locator(f'#monitor-stats tr[data-tool="{tool}"] td.{name}')
    return int(cell.text_content()) if cell.count() else 0


def test_monitor_shows_an_api_execution_start_run_and_end_without_reload(stack, tools, operator, alice, page):
    stack.anthropic.set_default({"tokens": 40, "delay_ms": 20})
    admin_log_in(page, stack, operator, then="/admin/monitor/")
    page.wait_for_selector('#monitor-connection[data-state="open"]')
    page.evaluate("window.__sameDocument = true")
    total_before = counter(page, "generate_report", "total")

    response = httpx.post(
        f"{stack.http_url}/api/tools/generate_report/execute_async/",
        headers=token_headers(alice),
        json={"parameters": REPORT_PARAMETERS, "use_cache": False},
    )
    assert response.status_code == 202
    execution_id = response.json()["execution_id"]
    row = f'#monitor-executions tr[data-execution-id="{execution_id}"]'
    page.wait_for_selector(row)
    page.wait_for_selector(f'{row}[data-status="completed"]')

    assert page.get_attribute(row, "data-history") == "pending running completed"
    assert page.text_content(f"{row} td.user") == "alice"
    assert page.text_content(f"{row} td.tool") == "generate_report"
    assert int(page.text_content(f"{row} td.duration")) >= 40 * 20 * 0.5
    assert counter(page, "generate_report", "total") == total_before + 1
    assert counter(page, "generate_report", "active") == 0
    assert page.evaluate("window.__sameDocument") is True  # no reload happened

    # Watching replays the execution's streamed text into the output panel.
    page.click(f"{row} td.watch button")
    report = "".join(f"w{i} " for i in range(40))
    page.wait_for_function("(text) => document.getElementById('monitor-output').textContent === text", arg=report)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-monitor.png"), full_page=True)


def test_monitor_refuses_non_staff_at_the_page(stack, alice, page):
    page.goto(f"{stack.http_url}/admin/login/?next=/admin/monitor/")
    page.fill("#id_username", alice.username)
    page.fill("#id_password", "pw-" + alice.username)
    page.click("input[type=submit]")
    page.wait_for_selector(".errornote")  # the admin login refuses non-staff
    assert "/admin/login/" in page.url


def test_fresh_monitor_lists_ended_executions_counts_running_ones_and_charts_them(stack, tools, operator, alice, page):
    stack.anthropic.set_default({"tokens": 10})
    ended = start_report(stack, alice, {"ended": 1})
    httpx.get(f"{stack.http_url}/api/executions/{ended}/events/", headers=token_headers(alice), timeout=30)
    stack.anthropic.set_default({"tokens": 400, "delay_ms": 20})
    running = start_report(stack, alice, {"running": 1})
    admin_log_in(page, stack, operator, then="/admin/monitor/")
    page.wait_for_selector('#monitor-connection[data-state="open"]')

    # Opened after the first ended: it comes from the snapshot's recent list.
    page.wait_for_selector(f'#monitor-executions tr[data-execution-id="{ended}"][data-status="completed"]')
    page.wait_for_selector(f'#monitor-executions tr[data-execution-id="{running}"][data-status="running"]')
    assert counter(page, "generate_report", "active") == 1
    assert counter(page, "generate_report", "total") == 2  # one ended + one running
    page.wait_for_selector("#monitor-charts[data-updated]")
    assert page.locator("#monitor-charts canvas").count() == 3
    assert chart_total(page, "completed") == 1 and chart_total(page, "active") == 1

    # Live: the run's end reaches the counters and, through charts.json, the charts.
    page.wait_for_selector(
        f'#monitor-executions tr[data-execution-id="{running}"][data-status="completed"]', timeout=60_000
    )
    assert counter(page, "generate_report", "total") == 2 and counter(page, "generate_report", "active") == 0
    page.wait_for_function("() => window.__monitorCharts.data.runs.completed.reduce((a, b) => a + b, 0) === 2")
    assert page.evaluate("window.__monitorCharts.data.duration_ms.p95[0]") >= 400 * 20 * 0.5
    assert page.evaluate("window.__monitorCharts.data.tokens.output[0]") == 410
    page.click('#monitor-charts button[data-window="day"]')
    page.wait_for_selector('#monitor-charts[data-window="day"]')
    assert page.locator('#monitor-charts [data-chart="runs"]').get_attribute("data-points") == "96"
    assert page.failed_requests == []
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-monitor-charts.png"), full_page=True)


def test_admin_index_and_executions_list_fit_1280_px(stack, tools, superuser, alice, page):
    stack.anthropic.set_default({"tokens": 5})
    for index in range(3):
        execution_id = start_report(stack, alice, {"fit": index})
        httpx.get(f"{stack.http_url}/api/executions/{execution_id}/events/", headers=token_headers(alice), timeout=30)
    admin_log_in(page, stack, superuser, then="/admin/")
    assert single_line(page, '#mcp-monitor-link a[href="/admin/monitor/"]')
    page.goto(f"{stack.http_url}/admin/mcp_tools/toolexecution/")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 3
    assert single_line(page, "#result_list tbody tr th.field-short_id a")
    assert len(rows.first.locator("th.field-short_id").inner_text().strip()) == 8
    overflow = page.evaluate("""() => {
        const results = document.querySelector('#changelist .results');
        const table = document.getElementById('result_list').getBoundingClientRect();
        return {scroll: results.scrollWidth - results.clientWidth, right: table.right,
                page: document.documentElement.scrollWidth - document.documentElement.clientWidth};
    }""")
    assert overflow["scroll"] <= 0 and overflow["page"] <= 0 and overflow["right"] <= 1280, overflow
    assert page.failed_requests == []
    page.screenshot(path=str(ARTIFACTS / "admin-executions.png"), full_page=True)
