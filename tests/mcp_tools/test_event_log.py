"""mcp_tools/events: the two event-log backends keep one contract (log.py's docstring)."""

from __future__ import annotations

import uuid

import pytest
from django.conf import settings

from mcp_tools.events import Entry, completed_event, status_event
from mcp_tools.events.backends import MemoryEventLog, RedisEventLog
from mcp_tools.events.log import Facts, Head, Refused


@pytest.fixture(
    params=[
        pytest.param("memory"),
        pytest.param("redis", marks=pytest.mark.production),
    ]
)
def log(request):
    if request.param == "memory":
        return MemoryEventLog()
    return RedisEventLog(settings.EVENT_LOG_URL, prefix=f"test-{uuid.uuid4().hex}")


def _entry(execution_id: str, event: dict, epoch: str = "e1", attempt: int = 0) -> Entry:
    return Entry(execution_id, {**event, "execution_id": execution_id}, epoch, attempt)


def test_numbering_is_gap_free_and_one_terminal_event_closes_the_log(log):
    eid = str(uuid.uuid4())
    assert log.create(_entry(eid, status_event("pending"))).seq == 1
    assert log.create(_entry(eid, status_event("pending"))).refused == Refused.EXISTS
    first, second = log.append_many(
        [_entry(eid, status_event("running")), _entry(eid, completed_event({}, duration_ms=1, cached=False, attempt=1))]
    )
    assert (first.seq, second.seq) == (2, 3)
    late = log.append_many([_entry(eid, status_event("running"))])[0]
    assert late.seq is None and late.refused == Refused.ENDED
    snapshot = log.read(eid, after_seq=1)
    assert [event["seq"] for event in snapshot.events] == [2, 3]
    assert snapshot.ended and snapshot.last_seq == 3 and snapshot.epoch == "e1"


def test_an_older_attempt_and_a_lost_epoch_are_refused(log):
    eid = str(uuid.uuid4())
    log.create(_entry(eid, status_event("pending")))
    assert log.append_many([_entry(eid, status_event("running"), attempt=2)])[0].seq == 2
    assert log.append_many([_entry(eid, status_event("running"), attempt=1)])[0].refused == Refused.STALE
    assert log.append_many([_entry(eid, status_event("running"), epoch="other")])[0].refused == Refused.LOST
    assert log.facts(eid).attempt == 2


def test_a_cancel_request_is_told_to_the_next_writer_and_refused_once_ended(log):
    eid = str(uuid.uuid4())
    log.create(_entry(eid, status_event("pending")))
    assert log.request_cancel(eid) is True
    assert log.append_many([_entry(eid, status_event("running"))])[0].cancel_requested
    log.append_many([_entry(eid, completed_event({}, duration_ms=1, cached=False, attempt=1))])
    assert log.request_cancel(eid) is False


def test_an_expiring_log_stays_readable_until_its_time_is_up(log):
    kept, gone = str(uuid.uuid4()), str(uuid.uuid4())
    for eid in (kept, gone):
        log.create(_entry(eid, status_event("pending")))
        log.append_many([_entry(eid, completed_event({}, duration_ms=1, cached=False, attempt=1))])
    log.expire(kept, 3600)
    log.expire(gone, 0)
    log.create(_entry(str(uuid.uuid4()), status_event("pending")))  # the memory log sweeps as logs are created
    assert log.read(kept).last_seq == 2 and log.facts(kept).ended
    assert log.read(gone).last_seq == 0 and not log.facts(gone).ended


async def test_heads_say_how_far_each_log_has_got_in_one_question(log):
    """The idle poll's question (``aheads``): each log's epoch and last seq; a missing log has neither."""
    written, missing = str(uuid.uuid4()), str(uuid.uuid4())
    log.create(_entry(written, status_event("pending")))
    log.append_many([_entry(written, status_event("running"))])
    heads = await log.aheads([written, missing])
    assert heads == {written: Head(epoch="e1", last_seq=2), missing: Head()}
    assert await log.aheads([]) == {}


async def test_the_control_poll_hears_only_the_logs_that_tell_their_run_something(log):
    """``afacts_news``: given each run's epoch and attempt, the facts of the logs that say the run must
    stop (ended, a newer attempt, a cancel, another epoch or none); a quiet log says nothing."""
    quiet, ended, newer, cancelled, replaced, gone = (str(uuid.uuid4()) for _ in range(6))
    for eid in (quiet, ended, newer, cancelled, replaced):
        log.create(_entry(eid, status_event("pending")))
        log.append_many([_entry(eid, status_event("running", attempt=1), attempt=1)])
    log.append_many([_entry(ended, completed_event({}, duration_ms=1, cached=False, attempt=1), attempt=1)])
    log.append_many([_entry(newer, status_event("running", attempt=2), attempt=2)])
    assert log.request_cancel(cancelled)
    known = dict.fromkeys((quiet, ended, newer, cancelled, gone), ("e1", 1)) | {replaced: ("e0", 1)}
    news = await log.afacts_news(known)
    assert set(news) == {ended, newer, cancelled, replaced, gone}
    assert news[ended].ended and news[newer].attempt == 2 and news[cancelled].cancel_asked
    assert news[replaced].epoch == "e1" and news[gone] == Facts()
    assert await log.afacts_news({quiet: ("e1", 2)}) == {}  # the run is ahead of the log: nothing to hear
    assert await log.afacts_news({}) == {}
