"""Model output is untrusted: HTML in it is shown as text, never run; Markdown
is rendered, with links only to http(s) addresses."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.web.helpers import log_in, output, run_report

pytestmark = [pytest.mark.production, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HOSTILE = (
    "Summary <script>alert('script ran'); window.__pwned = 'script'</script> then "
    "<img src=x onerror=\"alert('img ran'); window.__pwned = 'img'\"> and "
    "<a href=\"javascript:alert('a ran')\">click</a> and [md link](javascript:alert('md ran')) "
    "<iframe srcdoc=\"<script>parent.__pwned='iframe'</script>\"></iframe> **still bold**"
)

MARKDOWN = """# Findings

Sales *rose* in `north`, see [the source](https://example.com/report?a=1&b=2).

- first point
- second point
  - nested point
    - deeper point

1. one

2. two (a loose list is still one list)

| region | sales |
|---|---:|
| north | 16 |

```python
print("<b>not bold</b>")
```

> quoted
"""


def test_html_in_model_output_is_shown_as_text_and_never_runs(stack, tools, alice, ui):
    stack.anthropic.set_script([{"text": HOSTILE, "piece_chars": 7, "delay_ms": 5}])
    log_in(ui, alice)
    card = run_report(ui.page, '{"k": "xss"}')
    expect(card).to_have_attribute("data-status", "completed")
    shown = output(card)
    expect(shown).to_contain_text("<script>alert('script ran'); window.__pwned = 'script'</script>")
    expect(shown).to_contain_text("<img src=x onerror=\"alert('img ran'); window.__pwned = 'img'\">")
    expect(shown).to_contain_text("<a href=\"javascript:alert('a ran')\">click</a>")
    expect(shown).to_contain_text("<iframe srcdoc=")
    expect(shown.locator("strong")).to_have_text("still bold")
    assert shown.locator("script, img, iframe, a[href^='javascript'], [onerror]").count() == 0
    assert shown.locator("a").count() == 0  # the javascript: Markdown link is text, not a link
    assert ui.page.evaluate("window.__pwned") is None
    assert ui.dialogs == []
    assert ui.errors == []


def test_markdown_output_is_rendered_as_structure(stack, tools, alice, ui):
    stack.anthropic.set_script([{"text": MARKDOWN, "piece_chars": 9}])
    log_in(ui, alice)
    card = run_report(ui.page, '{"k": "markdown"}')
    expect(card).to_have_attribute("data-status", "completed")
    shown = output(card)
    expect(shown.locator("h4")).to_have_text("Findings")  # shifted below the page's own headings
    expect(shown.locator("em")).to_have_text("rose")
    expect(shown.locator("p code")).to_have_text("north")
    link = shown.get_by_role("link", name="the source")
    expect(link).to_have_attribute("href", "https://example.com/report?a=1&b=2")
    expect(link).to_have_attribute("rel", "noopener noreferrer nofollow")
    expect(shown.locator(":scope > ul > li")).to_have_count(2)
    expect(shown.locator(":scope > ul > li > ul > li")).to_contain_text("nested point")
    expect(shown.locator("ul ul ul > li")).to_have_text("deeper point")
    expect(shown.locator(":scope > ol")).to_have_count(1)
    expect(shown.locator(":scope > ol > li")).to_have_count(2)
    expect(shown.locator("table td")).to_have_text(["north", "16"])
    expect(shown.locator("pre code")).to_have_text('print("<b>not bold</b>")')
    expect(shown.locator("blockquote")).to_have_text("quoted")
    assert shown.locator("b").count() == 0
