"""A local Ray session started by a launcher, seen from outside: its processes and what they listen on.

Shared by the Ray and systemd tests; imports no Ray, so it loads without the ray extra.
"""

from __future__ import annotations

import psutil

from launcher.backends.ray_reaper import OWNER_ENV

LOOPBACK = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})


def session_processes(launcher_pid: int) -> list[psutil.Process]:
    """The processes of the Ray session a launcher started: by the marker it puts in their environment."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(OWNER_ENV, "").startswith(f"{launcher_pid}-"):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def listening(processes: list[psutil.Process]) -> set[tuple[str, str]]:
    """(address, process name) of every TCP socket these processes listen on."""
    return {
        (c.laddr.ip, p.name())
        for p in processes
        for c in p.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    }
