"""Child processes: find every descendant and make sure none outlives us.

Read from /proc rather than through a dependency: the launcher only needs
parent links and states, and Linux is the platform it serves on.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def stat_fields(pid: int) -> list[str] | None:
    """Fields 3 onwards of /proc/PID/stat (state, ppid, pgrp, ...), or None if the process is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces; fields follow it.
    return raw[raw.rfind(")") + 2 :].split()


def is_alive(pid: int) -> bool:
    """True for a running process; a zombie (exited, not yet reaped) counts as gone."""
    fields = stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid``, parents before children."""
    parents: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = stat_fields(int(entry.name))
        if fields is None or fields[0] in ("Z", "X"):
            continue
        parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found: list[int] = []
    queue = list(parents.get(pid, []))
    while queue:
        child = queue.pop(0)
        found.append(child)
        queue.extend(parents.get(child, []))
    return found


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
    fields = stat_fields(pid)
    if fields is None:
        return None
    # utime and stime are fields 14 and 15 of /proc/PID/stat; the list starts at field 3.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
