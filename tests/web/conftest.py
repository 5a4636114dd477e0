"""Browser fixtures: the distribution's Chromium, headless, driven by Playwright.

``ui`` gives a fresh browser page (plus what it saw: dialogs, page errors)
against the live production ``stack``; ``log_in(ui, user)`` goes through the
real login form. Playwright starts per test and stops before the database is
flushed, because its sync API keeps an asyncio loop running in this thread
and Django refuses ORM calls while one runs; ``DJANGO_ALLOW_ASYNC_UNSAFE`` is
set only while the browser is up (no Django code runs on that loop, the ORM
calls in a test are ordinary blocking calls).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from django.db import connections
from playwright.sync_api import Page, expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# How long the page may take to show a state the server reached.
UI_TIMEOUT_MS = 20_000


@dataclass
class UI:
    page: Page
    base_url: str
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@pytest.fixture
def ui(stack, monkeypatch, request) -> Iterator[UI]:
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: install the distribution's chromium package (apt-get install chromium).")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    expect.set_options(timeout=UI_TIMEOUT_MS)
    viewport = getattr(request, "param", None) or {"width": 1280, "height": 800}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport=viewport)
        page = context.new_page()
        page.set_default_timeout(UI_TIMEOUT_MS)
        state = UI(page=page, base_url=stack.http_url)

        def on_dialog(dialog) -> None:
            state.dialogs.append(f"{dialog.type}: {dialog.message}")
            dialog.dismiss()

        page.on("dialog", on_dialog)
        page.on("pageerror", lambda error: state.errors.append(str(error)))
        try:
            yield state
        finally:
            context.close()
            browser.close()
            # Connections opened by the test body belong to this context; close them
            # here, or the test database cannot be dropped at the end of the run.
            connections.close_all()
