"""Take the README's screenshots: the page mid-stream, and the admin (monitor with charts, executions list).

    .venv/bin/python tools/screenshot.py   # writes docs/screenshot.png, docs/admin-monitor.png,
                                           # docs/admin-executions.png

Self-contained: it starts the embedded default (SQLite in a temporary
directory, daphne, the in-process worker) with the Anthropic provider pointed
at the fake Messages API of the test suite (``tests/fake_anthropic.py``),
which streams a canned Markdown answer slowly enough to be caught half-way;
then a few more runs (one failing, one cancelled) give the monitor's charts
something to draw while one more streams. Nothing is read from or written to
the checkout except the PNGs. Needs
/usr/bin/chromium (Debian's ``chromium`` package) and the dev requirements.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import urllib.request
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from tests.e2e.helpers import page_server  # noqa: E402
from tests.stack import free_port, http_ok, wait_until  # noqa: E402

logger = logging.getLogger(__name__)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
USER, PASSWORD = "ada", "demo-password-1"
ADMIN, ADMIN_PASSWORD = "root", "demo-password-2"
STARTUP_TIMEOUT_S = 60

REPORT = """## Q3 sales at a glance

Revenue rose in **every region**, led by the north (+18%).

| region | revenue | change |
|---|---:|---:|
| north | 41,200 | +18% |
| south | 28,900 | +6% |
| west | 33,100 | +9% |

- Average order value held steady at **62.40**.
- Returns fell to 2.1% of orders, the lowest this year.
"""

SUMMARY = """## How tides work

Tides are the **regular rise and fall of the sea**, driven by the gravity of the Moon and, to a lesser \
degree, the Sun.

- The Moon's pull raises *two bulges* of water, on the sides of the Earth facing towards and away from it.
- As the Earth turns, most coasts pass through both bulges, so they see **two high tides a day**.
- *Spring tides* (the largest) come when Sun and Moon line up; *neap tides* when they are at right angles.

In short: the Moon sets the rhythm, the Sun adjusts the size, and the shape of each coast does the rest.
"""


def post_json(url: str, body, headers: dict[str, str] | None = None):
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"content-type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


def wait_for_end(base_url: str, token: str, execution_id: str) -> None:
    """The event stream ends after the execution's terminal event."""
    request = urllib.request.Request(
        f"{base_url}/api/executions/{execution_id}/events/", headers={"Authorization": f"Token {token}"}
    )
    urllib.request.urlopen(request, timeout=60).read()


@contextmanager
def process(args: list[str], env: dict[str, str], log_path: Path):
    with open(log_path, "ab") as log:
        popen = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield popen
    finally:
        popen.terminate()
        popen.wait(20)


@contextmanager
def fake_anthropic(env: dict[str, str]):
    popen = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_anthropic", "--port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = popen.stdout.readline().strip()
        if not line.startswith("listening on "):
            raise RuntimeError(f"fake Messages API did not start: {line!r}")
        yield line.removeprefix("listening on ")
    finally:
        popen.terminate()
        popen.wait(10)


def server_env(data_dir: Path, anthropic_url: str) -> dict[str, str]:
    env = {
        key: value for key, value in os.environ.items() if key not in {"REDIS_URL", "DATABASE_URL", "SECRET_KEY"}
    }  # the embedded default, whatever the shell has
    env.update(
        {
            "DATA_DIR": str(data_dir),
            "LLM_PROVIDER": "anthropic",
            "ANTHROPIC_API_KEY": "demo",
            "ANTHROPIC_BASE_URL": anthropic_url,
            "MCP_ALLOW_PRIVATE_URLS": "true",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def prepare_database(env: dict[str, str]) -> None:
    manage = [sys.executable, "manage.py"]
    for args in (
        ["migrate", "-v0"],
        ["sync_tools"],
        [
            "shell",
            "-c",
            f"from django.contrib.auth import get_user_model; "
            f"get_user_model().objects.create_user({USER!r}, password={PASSWORD!r}); "
            f"get_user_model().objects.create_superuser({ADMIN!r}, password={ADMIN_PASSWORD!r})",
        ],
    ):
        subprocess.run(manage + args, cwd=ROOT, env=env, check=True, capture_output=True)


def drive_page(base_url: str, anthropic_url: str, article_url: str, out: Path) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        expect.set_options(timeout=30_000)
        page.goto(base_url + "/")
        page.get_by_label("Username").fill(USER)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.locator("#run-button")).to_be_enabled()
        post_json(
            anthropic_url + "/_control/script",
            [
                {"text": REPORT, "piece_chars": 12},
                {"text": SUMMARY, "piece_chars": 5, "delay_ms": 45},
            ],
        )
        page.get_by_label("Tool", exact=True).select_option("generate_report")
        page.get_by_label("data").fill(
            json.dumps({"quarter": "Q3", "revenue": {"north": 41200, "south": 28900, "west": 33100}})
        )
        page.get_by_role("button", name="Run").click()
        expect(page.locator("article.execution").first).to_have_attribute("data-status", "completed")
        page.get_by_label("Tool", exact=True).select_option("summarize_content")
        page.get_by_label("url").fill(article_url)
        page.get_by_role("button", name="Run").click()
        expect(page.locator("article.execution")).to_have_count(2)
        streaming = page.locator("article.execution").last
        try:
            page.wait_for_function(
                "(card) => card.dataset.status === 'running' && "
                "card.querySelector('.execution-output').innerText.includes('two high tides')",
                arg=streaming.element_handle(),
            )
        except Exception:
            raise RuntimeError(
                "The summary never showed up mid-stream; the page said:\n" + page.inner_text("#transcript")
            ) from None
        page.evaluate("document.activeElement.blur()")  # no focus ring in the picture
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out))
        expect(streaming).to_have_attribute("data-status", "completed")
        browser.close()


def drive_admin(base_url: str, anthropic_url: str, out_dir: Path) -> None:
    token = post_json(base_url + "/api/auth/token/", {"username": USER, "password": PASSWORD})["token"]
    auth = {"Authorization": f"Token {token}"}

    def start(data: dict) -> str:
        return post_json(
            base_url + "/api/tools/generate_report/execute_async/",
            {"parameters": {"data": data}, "use_cache": False},
            auth,
        )["execution_id"]

    post_json(anthropic_url + "/_control/default", {"tokens": 60, "delay_ms": 10})
    post_json(
        anthropic_url + "/_control/script",
        [{"tokens": 120, "delay_ms": 5}, {"tokens": 30}, {"status": 400, "error_message": "prompt is too long"}],
    )
    for index in range(6):
        wait_for_end(base_url, token, start({"week": index}))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        expect.set_options(timeout=30_000)
        page.goto(base_url + "/admin/login/?next=/admin/monitor/")
        page.fill("#id_username", ADMIN)
        page.fill("#id_password", ADMIN_PASSWORD)
        page.click("input[type=submit]")
        expect(page.locator("#monitor-connection")).to_have_attribute("data-state", "open")
        post_json(anthropic_url + "/_control/default", {"tokens": 600, "delay_ms": 40})
        streaming = start({"quarter": "Q4"})
        row = page.locator(f'#monitor-executions tr[data-execution-id="{streaming}"]')
        expect(row).to_have_attribute("data-status", "running")
        row.get_by_role("button", name="watch").click()
        page.wait_for_function("() => document.getElementById('monitor-output').textContent.length > 200")
        page.wait_for_function(
            "() => window.__monitorCharts && window.__monitorCharts.data"
            " && window.__monitorCharts.data.runs.active.some((n) => n > 0)"
        )
        page.screenshot(path=str(out_dir / "admin-monitor.png"), full_page=True)
        page.goto(base_url + "/admin/mcp_tools/toolexecution/")
        page.screenshot(path=str(out_dir / "admin-executions.png"))
        browser.close()
    wait_for_end(base_url, token, streaming)  # the embedded server stops slowly with a run in progress


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshot.png")
    parser.add_argument(
        "--admin-dir", type=Path, default=ROOT / "docs", help="where admin-monitor.png and admin-executions.png go"
    )
    args = parser.parse_args()
    with ExitStack() as stack:
        data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mcp-screenshot-")))
        anthropic_url = stack.enter_context(fake_anthropic(dict(os.environ)))
        env = server_env(data_dir, anthropic_url)
        prepare_database(env)
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        stack.enter_context(
            process(
                [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
                env,
                data_dir / "daphne.log",
            )
        )
        wait_until(lambda: http_ok(base_url + "/accounts/login/"), timeout=STARTUP_TIMEOUT_S, what="daphne")
        article_url = stack.enter_context(page_server())
        drive_page(base_url, anthropic_url, article_url, args.out)
        drive_admin(base_url, anthropic_url, args.admin_dir)
    print(f"wrote {args.out}, {args.admin_dir / 'admin-monitor.png'}, {args.admin_dir / 'admin-executions.png'}")


if __name__ == "__main__":
    main()
