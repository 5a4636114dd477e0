"""Input a running execution waits for: the Tasks extension's ``inputRequests``.

A tool that needs the client's answer mid-run (an elicitation, a sampling
request) asks, and its worker thread waits; meanwhile ``tasks/get`` reports
the task ``input_required`` with the outstanding requests, and the client's
``tasks/update`` answers them (SEP-2663)::

    answers = inputs.ask(ctx.execution_id, {"confirm": {"method": "elicitation/create", "params": {...}}})
    # tasks/get  -> {"status": "input_required", "inputRequests": {"confirm-1": {...}}}
    # tasks/update {"inputResponses": {"confirm-1": {"action": "accept", "content": {...}}}}

Both sides meet in Django's cache (Redis in production, so a worker process
and any server process see the same entries; local memory in the embedded
default, where worker and server share a process). The asking side alone
writes the outstanding set; each answer is a key of its own, so an answer
and a new question never overwrite each other. A key is never reused within
an execution (the spec's rule): every ``ask`` numbers its keys anew.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from django.core.cache import cache

from mcp_tools.models import ToolExecution

# How often a waiting tool looks for answers (and whether it was cancelled).
POLL_S = 0.1
# How long an unanswered question is kept (and a tool waits, at most).
INPUT_TTL_S = 60 * 60


class InputNotAnswered(Exception):
    """The execution ended, or nobody answered within the wait, before every request was answered."""


def _pending_key(execution_id: str) -> str:
    return f"mcp:input:{execution_id}:pending"


def _answer_key(execution_id: str, key: str) -> str:
    return f"mcp:input:{execution_id}:answer:{key}"


def _round_key(execution_id: str) -> str:
    return f"mcp:input:{execution_id}:round"


def _execution_ended(execution_id: str) -> bool:
    return ToolExecution.objects.filter(pk=execution_id, status__in=ToolExecution.TERMINAL_STATUSES).exists()


def ask(
    execution_id: str,
    requests: dict[str, dict[str, Any]],
    *,
    timeout_s: float = INPUT_TTL_S,
    ended: Callable[[str], bool] = _execution_ended,
) -> dict[str, dict[str, Any]]:
    """Publish ``requests`` (name -> MCP request), wait for every answer; answers by the same names.

    Blocks the calling (worker) thread. Raises InputNotAnswered when the
    execution ends meanwhile (cancelled) or the wait runs out.
    """
    execution_id = str(execution_id)
    cache.add(_round_key(execution_id), 0, INPUT_TTL_S)
    number = cache.incr(_round_key(execution_id))
    wire = {f"{name}-{number}": request for name, request in requests.items()}
    cache.set(_pending_key(execution_id), wire, INPUT_TTL_S)
    waiter = threading.Event()
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            answers = cache.get_many([_answer_key(execution_id, key) for key in wire])
            if len(answers) == len(wire):
                return {name: answers[_answer_key(execution_id, f"{name}-{number}")] for name in requests}
            if ended(execution_id) or time.monotonic() > deadline:
                raise InputNotAnswered(f"Execution {execution_id} ended or timed out waiting for input.")
            waiter.wait(POLL_S)
    finally:
        cache.delete(_pending_key(execution_id))


def outstanding(execution_id: str) -> dict[str, dict[str, Any]]:
    """The requests the execution is waiting on that have no answer yet (empty if none)."""
    execution_id = str(execution_id)
    wire = cache.get(_pending_key(execution_id)) or {}
    if not wire:
        return {}
    answered = cache.get_many([_answer_key(execution_id, key) for key in wire])
    return {key: request for key, request in wire.items() if _answer_key(execution_id, key) not in answered}


def answer(execution_id: str, responses: dict[str, Any]) -> list[str]:
    """Record the responses to outstanding requests; others (unknown, already answered) are ignored.

    Returns the keys that were taken.
    """
    execution_id = str(execution_id)
    waiting = outstanding(execution_id)
    taken = [key for key in responses if key in waiting]
    cache.set_many({_answer_key(execution_id, key): responses[key] for key in taken}, INPUT_TTL_S)
    return taken
