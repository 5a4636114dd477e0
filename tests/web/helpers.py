"""Driving the page like a user: log in, pick a tool, fill the form, read the output."""

from __future__ import annotations

from playwright.sync_api import Locator, Page, expect

from tests.web.conftest import UI


def log_in(ui: UI, user, *, password: str | None = None) -> None:
    """Log in through /accounts/login/ and wait for the page to be connected with its tools."""
    page = ui.page
    page.goto(ui.base_url + "/")
    expect(page).to_have_url(ui.base_url + "/accounts/login/?next=/")
    page.get_by_label("Username").fill(user.get_username())
    page.get_by_label("Password").fill(password or "pw-" + user.get_username())
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(ui.base_url + "/")
    expect(page.locator("#connection")).to_have_attribute("data-state", "open")
    expect(page.locator("#run-button")).to_be_enabled()


def choose_tool(page: Page, name: str) -> None:
    page.get_by_label("Tool", exact=True).select_option(name)
    expect(page.locator(f'#tool-fields [id^="param-{name}-"]').first).to_be_attached()


def run_report(page: Page, data_json: str, *, use_cache: bool = False) -> Locator:
    """Start generate_report with ``data_json`` typed into its JSON editor; returns the new card."""
    choose_tool(page, "generate_report")
    page.get_by_label("data").fill(data_json)
    return run(page, use_cache=use_cache)


def run(page: Page, *, use_cache: bool = False) -> Locator:
    before = page.locator("article.execution").count()
    page.get_by_label("Reuse a cached result when there is one").set_checked(use_cache)
    page.get_by_role("button", name="Run").click()
    expect(page.locator("article.execution")).to_have_count(before + 1)
    return page.locator("article.execution").last


def output(card: Locator) -> Locator:
    return card.locator(".execution-output")


def words(count: int) -> str:
    """The fake Messages API's text for ``tokens: count``: "w0 w1 ... "."""
    return "".join(f"w{i} " for i in range(count))


def record_status_lines(page: Page) -> None:
    """Start logging every status line text the cards show (read with ``status_lines``)."""
    page.evaluate("""() => {
        window.__statusLog = [];
        const log = () => document.querySelectorAll('.execution-status').forEach((line) => {
            const last = window.__statusLog[window.__statusLog.length - 1];
            if (line.textContent && line.textContent !== last) window.__statusLog.push(line.textContent);
        });
        new MutationObserver(log).observe(document.getElementById('transcript'),
            {subtree: true, childList: true, characterData: true});
    }""")


def status_lines(page: Page) -> list[str]:
    return page.evaluate("window.__statusLog")
