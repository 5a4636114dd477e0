"""Waiting for processes to end, by pid, without sleeping: a pidfd becomes
readable when its process exits (reaped or not)."""

from __future__ import annotations

import os
import select

import psutil


def wait_until_gone(pids: list[int], timeout_s: float = 15.0) -> None:
    """Return once every pid has exited; fail the test if one is still running."""
    for pid in pids:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue  # already gone and reaped
        try:
            readable, _, _ = select.select([fd], [], [], timeout_s)
        finally:
            os.close(fd)
        assert readable, f"process {pid} ({_describe(pid)}) is still running"
        assert not is_running(pid)


def is_running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie (a zombie has ended; its parent reaps it)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def group_members(pgid: int) -> list[int]:
    """The live processes of process group ``pgid``."""
    members = []
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == pgid and is_running(process.pid):
                members.append(process.pid)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return members


def _describe(pid: int) -> str:
    try:
        return " ".join(psutil.Process(pid).cmdline())
    except psutil.NoSuchProcess:
        return "gone"
