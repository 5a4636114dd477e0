"""Brute force on the embedded default: the token endpoint, the login form and the admin login.

django-axes counts failed logins per address and per username; at the limit
both the next wrong and the next *right* password get 429 with
``Retry-After`` (the API's error envelope, or the "too many attempts" page),
while other accounts from other addresses, and token-authenticated requests,
are answered as usual.
"""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests.api.conftest import client_for

pytestmark = pytest.mark.django_db(transaction=True)

LIMIT = 3
COOLOFF_S = 600
ATTACKER = "10.9.8.7"


@pytest.fixture(autouse=True)
def _throttle(settings):
    from datetime import timedelta

    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = LIMIT
    settings.AXES_COOLOFF_TIME = timedelta(seconds=COOLOFF_S)


def token_attempt(username: str, password: str, address: str = ATTACKER):
    return APIClient().post("/api/auth/token/", {"username": username, "password": password}, REMOTE_ADDR=address)


def form_attempt(path: str, username: str, password: str, address: str = ATTACKER):
    return Client().post(path, {"username": username, "password": password}, REMOTE_ADDR=address)


def assert_locked_out_json(response) -> None:
    assert response.status_code == 429, response.content[:300]
    assert response["Retry-After"] == str(COOLOFF_S)
    error = response.json()["error"]
    assert error["code"] == "rate_limited" and error["retry_after"] == COOLOFF_S and error["message"]


def test_token_endpoint_locks_an_account_and_an_address_after_the_limit(alice, bob):
    for _ in range(LIMIT - 1):
        wrong = token_attempt("alice", "guess")
        assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "invalid_request"
    assert_locked_out_json(token_attempt("alice", "guess"))
    assert_locked_out_json(token_attempt("alice", "pw-alice"))  # the right password, too late
    assert_locked_out_json(token_attempt("alice", "pw-alice", address="10.1.1.1"))  # the account, from anywhere
    assert_locked_out_json(token_attempt("bob", "pw-bob"))  # anyone, from the attacker's address
    # Everyone else is answered as usual, and tokens keep working.
    assert token_attempt("bob", "pw-bob", address="10.1.1.1").json() == {"token": bob.auth_token.key}
    assert client_for(alice).get("/api/tools/").status_code == 200


def test_forty_wrong_passwords_in_a_row_are_throttled_with_the_default_limit(alice, settings):
    settings.AXES_FAILURE_LIMIT = 10
    statuses = [token_attempt("alice", f"guess-{n}").status_code for n in range(40)]
    assert statuses[:9] == [400] * 9 and set(statuses[9:]) == {429}


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_login_forms_answer_429_with_retry_after_once_locked(alice, staff, path):
    for _ in range(LIMIT - 1):
        assert form_attempt(path, staff.username, "guess").status_code == 200  # the form again, with its error
    locked = form_attempt(path, staff.username, "guess")
    assert locked.status_code == 429 and locked["Retry-After"] == str(COOLOFF_S)
    assert b"Too many failed logins" in locked.content
    assert form_attempt(path, staff.username, "pw-" + staff.username).status_code == 429
    # Another account from another address logs in as usual.
    ok = form_attempt("/accounts/login/", "alice", "pw-alice", address="10.1.1.1")
    assert ok.status_code == 302


def test_throttle_can_be_switched_off(alice, settings):
    settings.AXES_ENABLED = False
    assert {token_attempt("alice", "guess").status_code for _ in range(LIMIT + 2)} == {400}
    assert token_attempt("alice", "pw-alice").status_code == 200
