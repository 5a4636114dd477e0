"""The fixture tools that ask their client first (SEP-2322 multi-round trips).

Each prelude either asks (``InputRequired``) or hands the engine the
parameters to run with: the fixture's answer as ``message``, which the
``echo`` body streams back (tools.py). The words are the suite's.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import mcp_types as types
from mcp.shared.exceptions import MCPError

from mcp_tools.mcp.interactive import InputRequired, Round, elicitation, prelude, roots, sampling


def _content(answer: dict[str, Any] | None, field: str) -> Any:
    content = (answer or {}).get("content")
    return content.get(field) if isinstance(content, dict) else None


def _state(call: Round) -> dict[str, Any]:
    try:
        state = json.loads(call.state) if call.state else {}
    except ValueError:
        return {}
    return state if isinstance(state, dict) else {}


def _new_state(**fields: Any) -> str:
    return json.dumps({**fields, "nonce": secrets.token_hex(8)})


NAME = elicitation("What is your name?", {"name": {"type": "string"}})


def _reject_invalid(call: Round) -> None:
    """A response that is not an object is a malformed request, not an answer."""
    bad = [key for key, value in call.responses.items() if not isinstance(value, dict)]
    if bad:
        raise MCPError(code=types.INVALID_PARAMS, message=f"inputResponses[{bad[0]!r}] must be an object")


@prelude("test_input_required_result_elicitation")
def ask_name(call: Round):
    _reject_invalid(call)
    name = _content(call.response("user_name"), "name")
    if not isinstance(name, str):
        return InputRequired({"user_name": NAME})
    return {"message": f"Hello, {name}!"}


@prelude("test_tool_with_task")
def ask_name_then_task(call: Round):
    name = _content(call.response("user_name"), "name")
    if not isinstance(name, str):
        return InputRequired({"user_name": NAME})
    return {"message": f"Hello, {name}!"}


@prelude("test_input_required_result_sampling")
def ask_model(call: Round):
    answer = call.response("sample_request")
    if answer is None:
        return InputRequired({"sample_request": sampling("What is the capital of France?", max_tokens=100)})
    text = _content(answer, "text")
    return {"message": f"Sampling result: {text if isinstance(text, str) else 'no response'}"}


@prelude("test_input_required_result_list_roots")
def ask_roots(call: Round):
    answer = call.response("roots_request")
    if answer is None:
        return InputRequired({"roots_request": roots()})
    found = answer.get("roots") if isinstance(answer.get("roots"), list) else []
    return {"message": f"Found {len(found)} root(s)"}


CONFIRM = elicitation("Please confirm", {"ok": {"type": "boolean"}})


@prelude("test_input_required_result_request_state")
def ask_confirmation(call: Round):
    if _state(call).get("kind") == "request-state" and _content(call.response("confirm"), "ok") is True:
        return {"message": "state-ok: requestState validated"}
    return InputRequired({"confirm": CONFIRM}, state=_new_state(kind="request-state"))


@prelude("test_input_required_result_tampered_state")
def ask_confirmation_sealed(call: Round):
    # A tampered state never gets here: the SDK's RequestStateBoundary refuses it (-32602).
    if _state(call).get("kind") == "tamper-test" and call.response("confirm") is not None:
        return {"message": "integrity-ok: state verified"}
    return InputRequired({"confirm": CONFIRM}, state=_new_state(kind="tamper-test"))


@prelude("test_input_required_result_multiple_inputs")
def ask_three(call: Round):
    name, greeting, found = call.response("user_name"), call.response("greeting"), call.response("client_roots")
    if _state(call).get("kind") == "multiple-inputs" and name and greeting and found:
        text = _content(greeting, "text")
        count = len(found["roots"]) if isinstance(found.get("roots"), list) else 0
        return {
            "message": f"Name: {_content(name, 'name')}; Greeting: {text if isinstance(text, str) else 'Hello there!'};"
            f" Roots: {count}"
        }
    return InputRequired(
        {"user_name": NAME, "greeting": sampling("Generate a greeting", max_tokens=50), "client_roots": roots()},
        state=_new_state(kind="multiple-inputs"),
    )


STEP1 = elicitation("Step 1: What is your name?", {"name": {"type": "string"}})
STEP2 = elicitation("Step 2: What is your favorite color?", {"color": {"type": "string"}})


@prelude("test_input_required_result_multi_round")
def ask_twice(call: Round):
    state = _state(call)
    if state.get("round") == 1 and call.response("step1"):
        return InputRequired({"step2": STEP2}, state=_new_state(round=2, name=_content(call.response("step1"), "name")))
    if state.get("round") == 2 and call.response("step2"):
        name = state.get("name") if isinstance(state.get("name"), str) else "friend"
        return {"message": f"Multi-round complete for {name} who likes {_content(call.response('step2'), 'color')}"}
    return InputRequired({"step1": STEP1}, state=_new_state(round=1))


@prelude("test_input_required_result_capabilities")
def ask_what_the_client_can(call: Round):
    if call.responses:
        return {"message": f"capabilities-ok: received {','.join(call.responses)}"}
    requests = {}
    if call.can("elicitation"):
        requests["elicit_input"] = elicitation("Elicitation input", {"value": {"type": "string"}})
    if call.can("sampling"):
        requests["sample_input"] = sampling("Sample request", max_tokens=50)
    if not requests:
        return {"message": "No supported capabilities declared"}
    return InputRequired(requests, state=_new_state(kind="capabilities-test"))


@prelude("test_missing_capability")
def needs_sampling(call: Round):
    if not call.can("sampling"):
        raise MCPError(
            code=types.MISSING_REQUIRED_CLIENT_CAPABILITY,
            message="Missing required client capability",
            data={"requiredCapabilities": {"sampling": {}}},
        )
    return {"message": "Success"}
