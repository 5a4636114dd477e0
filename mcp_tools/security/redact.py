"""Secrets never reach a log line: tokens, passwords, API keys, credentials in URLs.

Browsers authenticate WebSockets and the event stream with ``?token=<key>``,
so every access log line of such a request holds a working API token; a
fetched URL may carry one of a user's own; an exception may quote a Redis
URL with its password. Three places write log lines, and each is covered:

* Python logging (Django, Celery workers, httpx, the embedded worker): the
  ``RedactingFilter`` on the console handler (``settings.LOGGING``) rewrites
  the message, its arguments and any traceback before anything is written;
* daphne's access log, which is not Python logging (it writes NCSA lines to
  stdout itself): ``redact_daphne_access_log()`` wraps its writer;
* uvicorn's access log: the same filter on its ``uvicorn.access`` logger.

``install()`` (``McpToolsConfig.ready``) does the last two::

    redact("GET /ws/executions/?token=6ff4402...")   # 'GET /ws/executions/?token=[redacted]'
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"

_SECRET_NAMES = (
    r"(?:token|access_token|auth_token|api_key|apikey|key|password|passwd|secret|sessionid"
    r"|csrfmiddlewaretoken)"
)
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # ?token=..., &password=... in URLs and form bodies
    (re.compile(rf"(?i)([?&;]{_SECRET_NAMES}=)[^&\s\"'#]+"), rf"\1{REDACTED}"),
    # Authorization header values
    (re.compile(r"(?i)\b(Token|Bearer|Basic)(\s+)[A-Za-z0-9._~+/=-]{8,}"), rf"\1\2{REDACTED}"),
    # user:password@ in URLs (redis://:pw@host, postgres://user:pw@host)
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]*:[^/\s@]+@"), rf"\1{REDACTED}@"),
    # "password": "...", 'token': '...', password=...
    (re.compile(rf"(?i)([\"']?{_SECRET_NAMES}[\"']?\s*[:=]\s*[\"'])[^\"']*([\"'])"), rf"\1{REDACTED}\2"),
    # Anthropic API keys, wherever they appear
    (re.compile(r"sk-ant-[A-Za-z0-9_-]{8,}"), f"sk-ant-{REDACTED}"),
    # DRF tokens are 40 hex digits: nothing else this service logs looks like one
    (re.compile(r"(?<![0-9a-fA-F])[0-9a-f]{40}(?![0-9a-fA-F])"), REDACTED),
)


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites a record's message and traceback text with secrets removed.

    The message is formatted first, then redacted (a secret may sit in the
    arguments). ``keep_arguments=True`` redacts each argument instead and keeps
    their shape, for formatters that unpack them (uvicorn's access log).
    """

    def __init__(self, *, keep_arguments: bool = False) -> None:
        super().__init__()
        self.keep_arguments = keep_arguments

    def filter(self, record: logging.LogRecord) -> bool:
        if self.keep_arguments and isinstance(record.args, tuple):
            record.args = tuple(_redacted_argument(argument) for argument in record.args)
        else:
            try:
                record.msg, record.args = redact(record.getMessage()), None
            except Exception:  # a broken format string: the handler reports it as usual
                return True
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def _redacted_argument(value: object) -> object:
    """Numbers stay numbers (``%d``); anything else is written as text anyway (``%s``: URLs, exceptions)."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return redact(str(value))


def redact_daphne_access_log() -> None:
    """Wrap daphne's access-log writer (NCSA lines written to a stream, not via logging)."""
    try:
        from daphne.access import AccessLogGenerator
    except ImportError:
        return
    write_entry = AccessLogGenerator.write_entry
    if getattr(write_entry, "redacts_secrets", False):
        return

    def redacting_write_entry(self, host, date, request, *args, **kwargs):
        return write_entry(self, host, date, redact(request), *args, **kwargs)

    redacting_write_entry.redacts_secrets = True  # type: ignore[attr-defined]
    AccessLogGenerator.write_entry = redacting_write_entry  # type: ignore[method-assign]


def install() -> None:
    """Cover the servers' access logs (called once Django is set up, before a server logs anything)."""
    redact_daphne_access_log()
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactingFilter) for f in access.filters):
        access.addFilter(RedactingFilter(keep_arguments=True))
