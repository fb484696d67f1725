"""Children that die with their parent, with the kernel's help.

A parent that is SIGKILLed (an OOM killer, a CI time-out, ``kill -9``) runs no
clean-up code, so a sweep "afterwards" never happens: the sweeper is dead.
Linux offers ``prctl(PR_SET_PDEATHSIG)``: the kernel sends the child a signal
when its parent goes. :func:`popen` starts a child with it armed, from a thread
that lives as long as the process (see below), and closes the race where the
parent dies between ``fork`` and the ``prctl``.

The signal is SIGTERM by default, not SIGKILL: a ``launch --profile`` child
then stops its own workers gracefully (they die with it in turn: their own
parent-death signal, set in ``app.runtime.die_with_parent``), and a foreign
server (gunicorn's or uvicorn's own command line in the bench) does the same.

The thread caveat: the kernel fires the signal when the *thread* that forked
the child exits, not when the process does. A child started from a short-lived
thread (a thread pool's worker, a test's helper thread) would be sent SIGTERM
as soon as that thread ends. :func:`popen` therefore forks from the main thread
when called there, and otherwise hands the fork to one long-lived spawner
thread, which ends only with the process.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import os
import signal
import subprocess
import threading
from collections.abc import Callable
from typing import Any

PR_SET_PDEATHSIG = 1
"""From <linux/prctl.h>."""
PARENT_GONE_EXIT = 1
"""Exit status of a child whose parent died before the signal was armed."""

_spawner: concurrent.futures.ThreadPoolExecutor | None = None
_spawner_lock = threading.Lock()


def _libc() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:  # pragma: no cover - not Linux
        return None


_LIBC = _libc()


def parent_death_preexec(sig: signal.Signals = signal.SIGTERM) -> Callable[[], None]:
    """A ``preexec_fn`` that arms ``sig`` on the parent's death in the child, before ``exec``.

    It runs in the child between ``fork`` and ``exec`` (the signal survives
    ``exec``), touches no lock and allocates next to nothing: ``libc`` is
    loaded here, in the parent. If the parent died before the ``prctl``, the
    child exits at once instead of running as an orphan.
    """
    parent = os.getpid()
    prctl = getattr(_LIBC, "prctl", None)

    def arm() -> None:
        if prctl is None:  # pragma: no cover - not Linux: best effort only
            return
        prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:
            os._exit(PARENT_GONE_EXIT)

    return arm


def _spawner_thread() -> concurrent.futures.ThreadPoolExecutor:
    global _spawner
    with _spawner_lock:
        if _spawner is None:
            # An idle pool worker waits on its queue until the interpreter
            # shuts down: exactly the lifetime the forking thread needs.
            _spawner = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="launch-spawner")
        return _spawner


def popen(argv: list[str], *, death_signal: signal.Signals = signal.SIGTERM, **kwargs: Any) -> subprocess.Popen[Any]:
    """``subprocess.Popen(argv, **kwargs)`` whose child gets ``death_signal`` when this process dies.

    Forked from the main thread, or from the long-lived spawner thread when
    called from any other (see the module's note on threads).
    """
    if "preexec_fn" in kwargs:
        raise TypeError("popen sets preexec_fn itself")

    def start() -> subprocess.Popen[Any]:
        return subprocess.Popen(argv, preexec_fn=parent_death_preexec(death_signal), **kwargs)  # noqa: PLW1509

    if threading.current_thread() is threading.main_thread():
        return start()
    return _spawner_thread().submit(start).result()
