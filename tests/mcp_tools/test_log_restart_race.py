"""A lost live log, seen twice at once: by the run's own write and by the control poll.

The run starts a new epoch; the control poll, which read the old log gone, must not stop that
restart half-way (it did: LogLost escaped the run, the execution stayed ``running`` and its
client heard nothing more — the ``redis_flushed`` fault test, once in a CI run).
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from mcp_tools.engine import liveness
from mcp_tools.engine.stopping import Stoppable
from mcp_tools.events.log import Facts


async def test_a_lost_stop_while_the_log_is_replaced_is_ignored_and_a_cancel_still_counts():
    run = Stoppable()
    run.task = asyncio.create_task(asyncio.sleep(60))
    with run.replacing_log():
        run.stop("lost")
        assert run.stop_reason is None and not run._cancel_pending
        run.stop("cancel")
        assert run.stop_reason == "cancel" and run._cancel_pending
    run._absorb_stop()
    run.stop_reason = None
    run.stop("lost")  # outside a restart, a lost log stops the run
    assert run.stop_reason == "lost"
    run.task.cancel()


async def test_the_control_poll_does_not_stop_a_run_that_started_a_new_log_while_it_read():
    stops: list[str] = []
    publisher = SimpleNamespace(epoch="old")
    run = SimpleNamespace(publisher=publisher, attempt=1, stop=stops.append)
    polled = asyncio.Event()

    class Log:
        async def afacts_news(self, known):
            if polled.is_set():
                return {"e1": Facts(epoch="new")}
            publisher.epoch = "new"  # the run replaced its log while the poll was reading
            polled.set()
            return {"e1": Facts(epoch=None)}  # the poll read the old log gone

    engine = SimpleNamespace(runs={"e1": run}, log=Log(), config={"CONTROL_POLL_S": 0})
    poll = asyncio.create_task(liveness.control_loop(engine))
    await asyncio.wait_for(polled.wait(), 5)
    await asyncio.sleep(0)  # let the poll finish the pass it read for
    poll.cancel()
    assert stops == []
