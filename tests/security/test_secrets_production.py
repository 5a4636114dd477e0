"""No token in the production topology's logs: daphne's access log and the celery worker's log.

A browser sends its token as ``?token=`` (WebSocket, event stream), and a
user's URL may carry one; daphne writes every request line and the worker's
HTTP client every fetched URL. Both logs are read after real traffic: the
lines are there, the token is not.
"""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.helpers import page_server, recv, recv_until_terminal, send, ws_connect
from tests.stack import wait_until

pytestmark = [pytest.mark.production, pytest.mark.django_db(transaction=True)]


def test_daphne_and_worker_logs_hold_no_token(stack, tools, alice):
    token = alice.auth_token.key
    daphne_log, worker_log = stack.daphne, stack.workers[0]
    daphne_start, worker_start = len(daphne_log.log()), len(worker_log.log())
    stack.anthropic.set_default({"tokens": 5})
    with page_server() as page, ws_connect(stack.ws_url, path=f"/ws/executions/?token={token}") as ws:
        send(ws, {"type": "execute", "tool": "summarize_content", "parameters": {"url": f"{page}?token={token}"}})
        accepted = recv(ws)
        assert recv_until_terminal(ws)[-1]["type"] == "execution.completed"
    events = httpx.get(f"{stack.http_url}/api/executions/{accepted['execution_id']}/events/?token={token}", timeout=30)
    assert events.status_code == 200 and "execution.completed" in events.text

    # The lines are written (daphne's WebSocket lines leave the query string out; its HTTP lines do not)...
    wait_until(
        lambda: "events/?token=[redacted]" in daphne_log.log()[daphne_start:],
        timeout=10,
        what="daphne's access-log line for the event stream",
    )
    wait_until(
        lambda: "/article?token=[redacted]" in worker_log.log()[worker_start:],
        timeout=10,
        what="the worker's line for the fetched page",
    )
    # ...and the token is nowhere.
    assert token not in daphne_log.log()[daphne_start:] + worker_log.log()[worker_start:]
