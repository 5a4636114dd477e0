"""The admin's live monitor in a real browser (headless Chromium, Playwright) on the production stack.

A staff user allowed to view all executions logs in through /admin/login/ and opens the monitor; an
execution started over the REST API with a token appears on the page, runs
and ends there, without a reload, and the tool's counters move.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import REPORT_PARAMETERS, token_headers

pytestmark = [pytest.mark.production, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def page() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            page.set_default_timeout(20_000)
            yield page
        finally:
            browser.close()


def counter(page, tool: str, name: str) -> int:
    cell = page.locator(f'#monitor-stats tr[data-tool="{tool}"] td.{name}')
    return int(cell.text_content()) if cell.count() else 0


def test_monitor_shows_an_api_execution_start_run_and_end_without_reload(stack, tools, operator, alice, page):
    stack.anthropic.set_default({"tokens": 40, "delay_ms": 20})
    page.goto(f"{stack.http_url}/admin/login/?next=/admin/monitor/")
    page.fill("#id_username", operator.username)
    page.fill("#id_password", "pw-" + operator.username)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/monitor/")
    page.wait_for_selector('#monitor-connection[data-state="open"]')
    page.evaluate("window.__sameDocument = true")
    total_before = counter(page, "generate_report", "total")

    response = httpx.post(f"{stack.http_url}/api/tools/generate_report/execute_async/",
                          headers=token_headers(alice), json={"parameters": REPORT_PARAMETERS, "use_cache": False})
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
