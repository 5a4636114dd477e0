"""The page keeps its bearings: after a run ends, or a History item is replayed, the top bar
and the top of that execution's card are on screen — on a wide screen and a narrow one."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import recv, recv_until_terminal, send, ws_connect
from tests.web.helpers import log_in, output, run_report, words

pytestmark = [pytest.mark.production, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VIEWPORTS = [{"width": 1280, "height": 900}, {"width": 420, "height": 860}]
LONG = 600  # words: far taller than either viewport once rendered


def assert_in_view(page, card) -> None:
    """The top bar is wholly on screen and the card's top edge (its title) is visible below it."""
    boxes = page.evaluate(
        """(card) => {
        const bar = document.querySelector('.topbar').getBoundingClientRect();
        const top = card.getBoundingClientRect();
        const title = card.querySelector('.execution-tool').getBoundingClientRect();
        return {bar: [bar.top, bar.bottom, bar.left, bar.right], card: top.top, title: [title.top, title.bottom],
                width: innerWidth, height: innerHeight};
    }""",
        card.element_handle(),
    )
    bar_top, bar_bottom, bar_left, bar_right = boxes["bar"]
    assert bar_top >= 0 and bar_bottom <= boxes["height"] and bar_left >= 0 and bar_right <= boxes["width"], boxes
    assert bar_bottom - 1 <= boxes["card"] and boxes["title"][1] <= boxes["height"], boxes


@pytest.mark.parametrize("ui", VIEWPORTS, indirect=True, ids=["1280x900", "420x860"])
def test_a_finished_run_leaves_the_top_bar_and_the_card_top_in_view(stack, tools, alice, ui):
    stack.anthropic.set_default({"tokens": LONG, "delay_ms": 2})
    log_in(ui, alice)
    page = ui.page
    card = run_report(page, '{"k": "long"}')
    expect(card).to_have_attribute("data-status", "completed")
    expect(output(card)).to_have_text(words(LONG).strip())
    page.wait_for_function("() => new Promise((done) => requestAnimationFrame(() => done(true)))")
    assert_in_view(page, card)
    page.screenshot(path=f"test-artifacts/in-view-run-{ui.page.viewport_size['width']}.png")


@pytest.mark.parametrize("ui", VIEWPORTS, indirect=True, ids=["1280x900", "420x860"])
def test_a_replayed_history_item_leaves_the_top_bar_and_the_card_top_in_view(stack, tools, alice, ui):
    stack.anthropic.set_default({"tokens": LONG})
    with ws_connect(stack.ws_url, alice.auth_token.key) as ws:
        for index in range(6):  # a history long enough to scroll the narrow page
            send(ws, {"type": "execute", "tool": "generate_report", "parameters": {"data": {"n": index}}})
            recv(ws)
            recv_until_terminal(ws)
    log_in(ui, alice)
    page = ui.page
    item = page.locator("#history li").last
    item.scroll_into_view_if_needed()
    execution_id = item.get_attribute("data-execution-id")
    item.get_by_role("button").click()
    card = page.locator(f'article.execution[data-execution-id="{execution_id}"]')
    expect(card).to_have_attribute("data-status", "completed")
    expect(output(card)).to_have_text(words(LONG).strip())
    page.wait_for_function("() => new Promise((done) => requestAnimationFrame(() => done(true)))")
    assert_in_view(page, card)
    page.screenshot(path=f"test-artifacts/in-view-replay-{ui.page.viewport_size['width']}.png")
