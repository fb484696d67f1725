"""The Ray session's reaper: kills every process of a local Ray instance once the launcher is gone.

``python -m launcher.backends.ray_reaper MARKER`` waits until its standard
input reaches end of file -- the launcher holds the only write end, so that
happens when the launcher exits for any reason, SIGKILL included -- then
SIGKILLs every process whose environment carries ``LAUNCH_RAY_OWNER=MARKER``.

Why a separate process: Ray's processes are not the launcher's workers. The
GCS server and the raylet are its children (Ray arms ``PR_SET_PDEATHSIG`` on
them), but Ray's workers -- the Serve controller, the proxy, every replica --
are the raylet's children and were seen orphaned after a driver was killed
mid-deploy. The launcher puts the marker in its environment before
``ray.init``; Ray's processes inherit it (the raylet starts workers with its
own environment), so "by environment" finds exactly this Ray session, however
its processes were reparented, and nothing of another Ray on the machine. The
reaper runs in its own session so that a Ctrl-C in the terminal or a SIGKILL
to the launcher's process group does not take it down before it has swept.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import psutil

OWNER_ENV = "LAUNCH_RAY_OWNER"
SWEEP_SECONDS = 10.0
"""How long to keep sweeping: a dying raylet may still start a worker."""
QUIET_SECONDS = 0.5
"""Done once no marked process was seen for this long."""


def marked(marker: str) -> list[psutil.Process]:
    """Every live process (but this one) whose environment holds ``OWNER_ENV=marker``."""
    found = []
    me = os.getpid()
    for proc in psutil.process_iter():
        if proc.pid == me:
            continue
        try:
            if proc.environ().get(OWNER_ENV) == marker and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def sweep(marker: str, *, seconds: float = SWEEP_SECONDS) -> int:
    """SIGKILL the marked processes until none has been seen for a moment; returns how many were killed."""
    killed: set[int] = set()
    deadline = time.monotonic() + seconds
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        procs = marked(marker)
        if procs:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= QUIET_SECONDS:
            break
        for proc in procs:
            try:
                proc.send_signal(signal.SIGKILL)
                killed.add(proc.pid)
            except psutil.Error:
                pass
        time.sleep(0.05)
    return len(killed)


def main(argv: list[str]) -> int:
    """Wait for the launcher to go (EOF on stdin), then sweep its Ray session."""
    if len(argv) != 1 or not argv[0]:
        print("usage: python -m launcher.backends.ray_reaper MARKER", file=sys.stderr)
        return 2
    # The launcher's Ctrl-C or SIGTERM is not ours: we stop when our input ends.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while sys.stdin.buffer.read(4096):
        pass
    count = sweep(argv[0])
    if count:
        print(f"launch: ray reaper killed {count} process(es) left by the Ray session", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
