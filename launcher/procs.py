"""Child processes: find every descendant and make sure none outlives us (through psutil)."""

from __future__ import annotations

import os
import signal
import time

import psutil

_GONE = (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)


def is_alive(pid: int) -> bool:
    """True for a running process; a zombie (exited, not yet reaped) counts as gone."""
    try:
        return psutil.Process(pid).status() not in _GONE
    except psutil.Error:
        return False


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid``, parents before children."""
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []
    return [child.pid for child in children if is_alive(child.pid)]


def reap(pids: list[int]) -> None:
    """Collect those of ``pids`` that are our exited children.

    Only named pids, never ``waitpid(-1)``: reaping a child that a backend's
    supervisor still watches would make its ``join`` wait forever.
    """
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def terminate_tree(pid: int, *, grace: float, spare: frozenset[int] = frozenset()) -> list[int]:
    """SIGTERM every descendant of ``pid``, SIGKILL what remains after ``grace`` s.

    Returns the pids that had to be killed. Used as the last line of defence
    after a backend returned: a worker left behind would keep the port and the
    model's memory. Pids in ``spare`` are left alone.
    """
    pids = [p for p in descendants(pid) if p not in spare]
    for child in pids:
        _signal(child, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        reap(pids)
        if not any(is_alive(child) for child in pids):
            return []
        time.sleep(0.05)
    killed = [child for child in descendants(pid) if child not in spare and is_alive(child)]
    for child in killed:
        _signal(child, signal.SIGKILL)
    time.sleep(0.05)
    reap(killed)
    return killed


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def resource_tracker_pid() -> int | None:
    """The pid of multiprocessing's resource tracker, if this process started one.

    uvicorn and hypercorn spawn workers through multiprocessing, which starts
    a tracker that ignores SIGTERM and exits by itself once this process exits
    (its pipe closes). Stopping it earlier would unlink semaphores that the
    interpreter's own finalizers still expect, so it is left to exit with us.
    """
    from multiprocessing import resource_tracker

    pid = getattr(resource_tracker._resource_tracker, "_pid", None)
    return pid if isinstance(pid, int) else None


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) ``pid`` has used so far, or None if it is gone."""
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return None
    return times.user + times.system


def group_alive(pgid: int) -> bool:
    """True while any process of the group ``pgid`` exists."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_group(pgid: int, *, wait: float = 5.0) -> bool:
    """SIGKILL whatever is left of process group ``pgid``; True if anything was."""
    if not group_alive(pgid):
        return False
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + wait
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return True
