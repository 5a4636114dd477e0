"""Security rules that more than one entry point shares, each in one module.

* ``origin``: may a browser page on this ``Origin`` use the user's session
  cookie here (WebSocket handshakes, the event stream)?
* ``redact``: tokens, passwords and keys never reach a log line.
* ``lockout``: the answer to a login that django-axes has locked out
  (429 with ``Retry-After``).

Hostile JSON has its own module, ``mcp_tools/jsonguard.py``; who may watch
or cancel whose executions is a visibility rule, in ``selectors.py``.
"""
