"""The page in a real browser against the production topology: log in, run
each tool, watch it stream, stop it, lose the connection, reopen history."""

from __future__ import annotations

import pytest
from django.contrib.sessions.models import Session
from playwright.sync_api import expect

from mcp_tools.models import ToolExecution
from tests.e2e.helpers import page_server, recv, recv_until_terminal, send, ws_connect
from tests.stack import wait_until
from tests.web.helpers import choose_tool, log_in, output, record_status_lines, run, run_report, status_lines, words

pytestmark = [pytest.mark.production, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

STREAMING = {"tokens": 80, "delay_ms": 25}


def running_with_text(card, piece: str) -> None:
    """Wait until ``card`` shows ``piece`` while its status is still running."""
    card.page.wait_for_function(
        """([card, piece]) => card.dataset.status === 'running'
                && card.querySelector('.execution-output').innerText.includes(piece)""",
        arg=[card.element_handle(), piece],
    )


def test_summarize_content_streams_text_before_completing(stack, tools, alice, ui):
    stack.anthropic.set_default(STREAMING)
    log_in(ui, alice)
    page = ui.page
    with page_server() as url:
        choose_tool(page, "summarize_content")
        page.get_by_label("url").fill(url)
        card = run(page)
        running_with_text(card, "w5 ")
        partial = output(card).inner_text()
        expect(card).to_have_attribute("data-status", "completed")
    assert partial.startswith("w0 w1 w2 w3 w4 w5") and len(partial) < len(words(80).strip())
    expect(output(card)).to_have_text(words(80).strip())
    expect(card.locator(".execution-status")).to_contain_text("Completed in")
    expect(card.locator(".execution-status")).to_contain_text("fresh result")
    expect(card.locator(".execution-result")).to_contain_text(url)
    execution_id = card.get_attribute("data-execution-id")
    assert page.evaluate("id => window.__mcp.views.get(id).text", execution_id) == words(80)
    execution = ToolExecution.objects.get(pk=execution_id)
    assert execution.user == alice and execution.result["summary"] == words(80)
    assert not ui.errors and not ui.dialogs


def test_generate_report_streams_and_shows_the_result(stack, tools, alice, ui):
    stack.anthropic.set_default(STREAMING)
    log_in(ui, alice)
    card = run_report(ui.page, '{"sales": [3, 5, 8], "region": "north"}')
    running_with_text(card, "w5 ")
    expect(card).to_have_attribute("data-status", "completed")
    expect(output(card)).to_have_text(words(80).strip())
    expect(card.locator(".execution-result")).to_contain_text('"output_tokens": 80')
    execution = ToolExecution.objects.get(pk=card.get_attribute("data-execution-id"))
    assert execution.parameters == {"data": {"sales": [3, 5, 8], "region": "north"}}
    assert execution.result["report"] == words(80)


def test_same_request_again_is_answered_from_the_cache_and_says_so(stack, tools, alice, ui):
    stack.anthropic.set_default({"tokens": 12})
    log_in(ui, alice)
    first = run_report(ui.page, '{"k": 1}', use_cache=True)
    expect(first.locator(".execution-status")).to_contain_text("fresh result")
    second = run(ui.page, use_cache=True)
    expect(second.locator(".execution-status")).to_contain_text("cached result")
    expect(output(second)).to_have_text(words(12).strip())
    assert len(stack.anthropic.requests()) == 1


def test_invalid_parameter_is_shown_at_its_field(stack, tools, alice, ui):
    log_in(ui, alice)
    page = ui.page
    choose_tool(page, "generate_report")
    field = page.locator('[data-field="data"]')
    page.get_by_label("data").fill("[1, 2]")  # valid JSON, not the object the schema wants
    page.get_by_role("button", name="Run").click()
    expect(field.locator(".field-error")).to_have_text("[1, 2] is not of type 'object'")
    expect(page.get_by_label("data")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#form-error")).to_be_visible()
    assert page.locator("article.execution").count() == 0
    assert not ToolExecution.objects.exists()


def test_form_checks_required_fields_and_json_syntax_before_sending(stack, tools, alice, ui):
    log_in(ui, alice)
    page = ui.page
    choose_tool(page, "generate_report")
    editor = page.get_by_label("data")
    editor.fill('{"a": ')
    expect(page.locator('[data-field="data"] .field-error')).to_contain_text("Not valid JSON")
    editor.fill('{"a": 1}')
    expect(page.locator('[data-field="data"] .field-error')).to_be_hidden()
    choose_tool(page, "summarize_content")
    page.get_by_role("button", name="Run").click()
    expect(page.locator('[data-field="url"] .field-error')).to_have_text("This field is required.")
    expect(page.get_by_label("url")).to_be_focused()
    assert page.locator("article.execution").count() == 0
    assert not ToolExecution.objects.exists()


def test_stop_button_cancels_the_execution(stack, tools, alice, ui):
    stack.anthropic.set_default({"tokens": 2000, "delay_ms": 20})
    log_in(ui, alice)
    card = run_report(ui.page, '{"k": "stop me"}')
    running_with_text(card, "w3 ")
    card.get_by_role("button", name="Stop").click()
    expect(card).to_have_attribute("data-status", "cancelled")
    expect(card.locator(".execution-status")).to_have_text("Cancelled")
    expect(card.get_by_role("button", name="Stop")).to_be_hidden()
    execution_id = card.get_attribute("data-execution-id")
    wait_until(
        lambda: ToolExecution.objects.get(pk=execution_id).status == "cancelled", timeout=10, what="the cancelled row"
    )
    assert len(output(card).inner_text()) < len(words(2000))


def test_dropped_socket_mid_stream_resumes_with_exact_text(stack, tools, alice, ui):
    stack.anthropic.set_default({"tokens": 200, "delay_ms": 25})
    log_in(ui, alice)
    page = ui.page
    page.evaluate("""() => {
        const line = document.getElementById('connection');
        window.__states = [];
        new MutationObserver(() => window.__states.push(line.dataset.state))
            .observe(line, {attributes: true, attributeFilter: ['data-state']});
    }""")
    card = run_report(page, '{"k": "reconnect"}')
    running_with_text(card, "w10 ")
    cut_at = page.evaluate("""() => {
        window.__firstSocket = window.__mcp.socket;
        window.__mcp.socket.close();
        return window.__mcp.views.values().next().value.text.length;
    }""")
    expect(page.locator("#connection")).to_have_attribute("data-state", "open")
    expect(card).to_have_attribute("data-status", "completed", timeout=30_000)
    states = page.evaluate("window.__states")
    assert states[:3] == ["waiting", "connecting", "open"], states
    assert page.evaluate("window.__mcp.socket !== window.__firstSocket")
    assert cut_at < len(words(200))
    expect(output(card)).to_have_text(words(200).strip())
    assert page.evaluate("window.__mcp.views.values().next().value.text") == words(200)


def test_duplicate_and_out_of_order_events_never_reach_the_text(stack, tools, alice, ui):
    stack.anthropic.set_default({"tokens": 150, "delay_ms": 25})
    log_in(ui, alice)
    page = ui.page
    card = run_report(page, '{"k": "dedupe"}')
    running_with_text(card, "w10 ")
    # Frames as a misbehaving server or network path might deliver them, fed to the real socket handler.
    page.evaluate(
        """(id) => {
        const seq = window.__mcp.client.lastSeq(id);
        const frame = (event) => window.__mcp.socket.dispatchEvent(
            new MessageEvent('message', {data: JSON.stringify({execution_id: id, ...event})}));
        frame({type: 'execution.delta', seq: seq, text: 'DUPLICATE '});
        frame({type: 'execution.delta', seq: seq + 5, text: 'FROM THE FUTURE '});
    }""",
        card.get_attribute("data-execution-id"),
    )
    expect(card).to_have_attribute("data-status", "completed")
    expect(output(card)).to_have_text(words(150).strip())


def test_reopening_an_execution_that_is_gone_says_so(stack, tools, alice, ui):
    with ws_connect(stack.ws_url, alice.auth_token.key) as ws:
        send(ws, {"type": "execute", "tool": "generate_report", "parameters": {"data": {"gone": True}}})
        execution_id = recv(ws)["execution_id"]
        recv_until_terminal(ws)
    log_in(ui, alice)
    ToolExecution.objects.filter(pk=execution_id).delete()
    ui.page.locator("#history li").first.get_by_role("button").click()
    card = ui.page.locator(f'article.execution[data-execution-id="{execution_id}"]')
    expect(card).to_have_attribute("data-status", "error")
    expect(card.locator(".execution-status")).to_have_text("This execution is no longer available.")


def test_retrying_drops_the_earlier_text_and_says_which_attempt(stack, tools, alice, ui):
    stack.anthropic.set_script([{"tokens": 30, "delay_ms": 20, "drop_after": 6}, {"tokens": 30, "delay_ms": 20}])
    log_in(ui, alice)
    record_status_lines(ui.page)
    card = run_report(ui.page, '{"k": "retry"}')
    expect(card).to_have_attribute("data-status", "completed")
    expect(output(card)).to_have_text(words(30).strip())
    lines = status_lines(ui.page)
    assert any(line.startswith("Retrying, attempt 2") for line in lines), lines
    assert "Running (attempt 2)" in lines, lines


def test_failed_execution_shows_the_error_message(stack, tools, alice, ui):
    stack.anthropic.set_script([{"status": 400, "error_message": "prompt is too long"}])
    log_in(ui, alice)
    card = run_report(ui.page, '{"k": "fail"}')
    expect(card).to_have_attribute("data-status", "failed")
    expect(card.locator(".execution-status")).to_contain_text("Failed: Claude rejected the request (HTTP 400)")
    expect(card.locator(".execution-status")).to_contain_text("(llm_error)")


def test_history_lists_own_executions_and_reopening_replays_them(stack, tools, alice, bob, ui):
    stack.anthropic.set_default({"tokens": 25})
    finished = {}
    for user, data in ((alice, {"mine": 1}), (bob, {"theirs": 2})):
        with ws_connect(stack.ws_url, user.auth_token.key) as ws:
            send(ws, {"type": "execute", "tool": "generate_report", "parameters": {"data": data}})
            accepted = recv(ws)
            recv_until_terminal(ws)
        finished[user.username] = accepted["execution_id"]
    log_in(ui, alice)
    page = ui.page
    items = page.locator("#history li")
    expect(items).to_have_count(1)
    expect(items.first).to_contain_text('{"data":{"mine":1}}')
    expect(items.first.locator(".badge")).to_have_text("completed")
    items.first.get_by_role("button").click()
    card = page.locator(f'article.execution[data-execution-id="{finished["alice"]}"]')
    expect(card).to_have_attribute("data-status", "completed")
    expect(output(card)).to_have_text(words(25).strip())
    expect(items.first.get_by_role("button")).to_have_attribute("aria-current", "true")


def test_new_execution_joins_the_history_and_updates_its_status(stack, tools, alice, ui):
    stack.anthropic.set_default({"tokens": 10})
    log_in(ui, alice)
    card = run_report(ui.page, '{"k": "history"}')
    expect(card).to_have_attribute("data-status", "completed")
    execution_id = card.get_attribute("data-execution-id")
    entry = ui.page.locator("#history li").first
    expect(entry).to_have_attribute("data-execution-id", execution_id)
    expect(entry.locator(".badge")).to_have_text("completed")
    ui.page.reload()
    expect(ui.page.locator("#history li").first).to_have_attribute("data-execution-id", execution_id)
    expect(ui.page.locator("#history li").first.locator(".badge")).to_have_text("completed")


def test_ended_session_stops_reconnecting_and_asks_to_log_in(stack, tools, alice, ui):
    log_in(ui, alice)
    page = ui.page
    Session.objects.all().delete()
    page.evaluate("window.__mcp.socket.close()")
    expect(page.locator("#connection")).to_have_attribute("data-state", "signed-out")
    expect(page.get_by_role("link", name="Log in again")).to_have_attribute("href", "/accounts/login/?next=%2F")
    expect(page.locator("#run-button")).to_be_disabled()


@pytest.mark.parametrize("ui", [{"width": 375, "height": 740}], indirect=True)
def test_narrow_screen_keyboard_only_run(stack, tools, alice, ui):
    stack.anthropic.set_default({"tokens": 40})
    log_in(ui, alice)
    page = ui.page
    unlabeled = page.evaluate("""() => [...document.querySelectorAll('#tool-form :is(input, select, textarea)')]
        .filter((control) => control.labels.length === 0).map((control) => control.id)""")
    assert unlabeled == []
    choose_tool(page, "generate_report")
    editor = page.get_by_label("data")
    editor.focus()
    page.keyboard.type('{"sizes": [1, 2, 3]}')
    page.keyboard.press("Control+Enter")
    card = page.locator("article.execution").last
    expect(card).to_have_attribute("data-status", "completed")
    expect(output(card)).to_have_text(words(40).strip())
    expect(card.locator(".execution-status")).to_have_attribute("aria-live", "polite")
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0
