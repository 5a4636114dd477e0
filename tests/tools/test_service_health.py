"""gantz.yaml's example http tool, service_health, works offline: it asks the service's own /health/."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.e2e.helpers import embedded_serve, recv, recv_until_terminal, send, ws_connect
from tests.stack import ROOT

CHECKS = {"database": "ok", "event_store": "ok"}


def test_service_health_runs_on_a_fresh_embedded_server(tmp_path):
    with embedded_serve(tmp_path) as server:  # the project's gantz.yaml; serve sets SERVICE_URL to itself
        with ws_connect(server.ws_url, server.token) as ws:
            send(ws, {"type": "execute", "tool": "service_health", "parameters": {}})
            assert recv(ws)["type"] == "execution.accepted"
            events = recv_until_terminal(ws)
    assert events[-1]["type"] == "execution.completed", events[-1]
    result = events[-1]["result"]
    assert result["status"] == 200 and json.loads(result["output"]) == CHECKS
    assert "".join(e["text"] for e in events if e["type"] == "execution.delta") == result["output"]


@pytest.mark.production
@pytest.mark.django_db(transaction=True)
def test_service_health_asks_daphne_which_asks_postgresql_and_redis(stack, tools):
    answer = httpx.get(stack.http_url + "/health/")
    assert answer.status_code == 200 and answer.json() == {"status": "ok", "checks": CHECKS}
    called = stack.run_manage("run_tool", "service_health", env={"GANTZ_CONFIG": str(ROOT / "gantz.yaml")})
    assert called.returncode == 0, called.stderr
    result = json.loads(called.stdout)
    assert result["status"] == 200 and json.loads(result["output"]) == CHECKS
