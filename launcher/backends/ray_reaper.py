"""The local Ray instance's keeper: it runs Ray's head as its child, and leaves nothing of it once the launcher goes.

``python -m launcher.backends.ray_reaper MARKER TEMP_DIR -- HEAD_COMMAND...``
(:mod:`launcher.backends.ray` builds the command: ``ray start --head --block``)
makes itself a *child subreaper*, starts the head, tells the launcher on its
standard output when the head is up (``ready ADDRESS``, read from Ray's own
``TEMP_DIR/ray_current_cluster``, or ``failed STATUS`` if the head exited
first), then waits until its standard input reaches end of file. The launcher
holds the only write end of that pipe, so that happens when the launcher
exits for any reason: a clean stop, an exception, SIGKILL. It then stops the
head gracefully (SIGTERM to ``ray start --block``, which stops its GCS, raylet
and helpers, waiting at most :data:`HEAD_STOP_SECONDS`), SIGKILLs every
descendant left, SIGKILLs every process whose environment carries
``LAUNCH_RAY_OWNER=MARKER`` (a second net), reaps, and exits. A head that exits
on its own once up is reported (``exited STATUS``), so that the launcher stops
too, and what is left of the instance is killed at once.

Why a subreaper. Ray's processes are not the launcher's workers, and they do
not all die with their parent: the raylet's workers (Serve's controller, the
proxy, every replica) and its agents (``ray::DashboardAgent``,
``ray::RuntimeEnvAgent``) were seen running, reparented to pid 1, after the
launcher that had started Ray in-process (``ray.init``) was SIGKILLed. The agents
could not even be found by the marker: they overwrite their environment when
they set their process title, so ``/proc/PID/environ`` is blank. With
``PR_SET_CHILD_SUBREAPER`` every orphan of the head's tree is reparented to
this process instead of pid 1, so "my descendants" is the whole Ray instance,
whatever died first and however Ray's processes fork. The head also gets
SIGTERM if this process is killed (a parent-death signal), and stops itself.

This process runs in its own session (the launcher starts it so): a Ctrl-C in
the terminal (SIGINT to the foreground process group) or a SIGKILL of the
launcher's group reaches neither it nor Ray, which would otherwise lose
processes under Serve's graceful shutdown. SIGINT is ignored; SIGTERM makes it
clean up and exit at once, as end of file does.

:func:`start_hook` runs inside ``ray start`` (``RAY_START_HOOK``): it makes the
head what ``ray.init`` makes of a new local instance, which ``ray start`` alone
does not: no Ray Client server (``ray start`` adds one, on the fixed port 10001:
a second instance's bound it too, measured, and a client would reach either
instance; nothing here uses it) and token authentication with a token
generated if there is none yet.
"""

from __future__ import annotations

import ctypes
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

import psutil

from launcher import lifeline

OWNER_ENV = "LAUNCH_RAY_OWNER"
START_HOOK_ENV = "RAY_START_HOOK"
"""Read by ``ray start``: a ``module.function`` it calls with its parameters before it starts anything."""
START_HOOK = f"{__name__}.start_hook"
ADDRESS_FILE = "ray_current_cluster"
"""Where ``ray start`` writes the head's GCS address once every head process is up (in its ``--temp-dir``)."""
HEAD_LOG = "head.log"
"""The head command's output (``ray start``'s banner, or its error), in the temp dir."""
PR_SET_CHILD_SUBREAPER = 36
"""From <linux/prctl.h>."""
HEAD_STOP_SECONDS = 5.0
"""How long ``ray start`` gets to stop its processes after SIGTERM before SIGKILL (measured: 2.3 to 3.5 s once
Serve has stopped; up to 8 s on a loaded machine when the head was still starting): short, since nothing is
lost by killing what is left (Serve has drained already, or the launcher died), and a SIGKILLed launcher's
instance must be gone within seconds."""
KILL_SECONDS = 2.0
"""How long to keep SIGKILLing descendants until none is left."""
SWEEP_SECONDS = 3.0
"""How long the marker sweep may go on (a dying raylet may still start a worker)."""
QUIET_SECONDS = 0.5
"""The sweep is done once no marked process was seen for this long."""
POLL_SECONDS = 0.05
_ADDRESS = re.compile(r"[^\s:]+:\d+")


def start_hook(ray_params: Any, head: bool) -> None:
    """In ``ray start``: no Ray Client server; token authentication as ``ray.init`` sets it up for a new instance.

    ``ray start`` enables token authentication only when a token exists already;
    ``ray.init`` creates one. The launcher puts ``RAY_AUTH_MODE=token`` in the
    environment (unless it was set), so the head requires a token: it is
    generated here, where ``ray.init`` would, when missing.
    """
    ray_params.ray_client_server_port = None
    os.environ.pop(START_HOOK_ENV, None)  # for this ray start only, not for every process it starts
    if head:
        from ray._private.authentication.authentication_token_setup import ensure_token_if_auth_enabled

        ensure_token_if_auth_enabled(None, create_token_if_missing=True)


def become_subreaper() -> bool:
    """Make this process the reaper of its descendants' orphans; False where the kernel cannot."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return False
    return bool(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)


def read_address(temp_dir: Path) -> str | None:
    """The head's GCS address once ``ray start`` has written it (whole), else None."""
    try:
        text = (temp_dir / ADDRESS_FILE).read_text().strip()
    except OSError:
        return None
    return text if _ADDRESS.fullmatch(text) else None


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_EXCEPTION = re.compile(r"[A-Za-z_][\w.]*(Error|Exception|Exit): ")
_ERROR = re.compile(r"\sERROR\s")
"""A log record of level ERROR (``ray start``'s own: ``DATE\tERROR file.py:N -- message``)."""


def head_cause(temp_dir: Path, *, last_line: bool = True) -> str:
    """The head's own explanation: the last exception line of its output, else its last error, else its last line.

    ``last_line=False``: no last line (``""``) when there is no exception or error (a head that ran, then exited).
    """
    try:
        text = (temp_dir / HEAD_LOG).read_text(errors="replace")
    except OSError:
        return "(no output)" if last_line else ""
    lines = [_ANSI.sub("", line).strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    for line in reversed(lines):
        if _EXCEPTION.match(line):
            return line
    for line in reversed(lines):
        if _ERROR.search(line):
            return line.split(" -- ", 1)[-1]
    if not last_line:
        return ""
    return lines[-1] if lines else "(no output)"


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
        _sigkill(procs, killed)
        time.sleep(POLL_SECONDS)
    return len(killed)


def _sigkill(procs: list[psutil.Process], killed: set[int]) -> None:
    """SIGKILL each of ``procs`` (noting its pid in ``killed``), then reap what exited."""
    for proc in procs:
        try:
            proc.send_signal(signal.SIGKILL)
            killed.add(proc.pid)
        except psutil.Error:
            pass
    reap()


def reap() -> dict[int, int]:
    """Collect every exited child (orphans reparented here included); {pid: wait status}."""
    statuses = {}
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
        statuses[pid] = status
    return statuses


def live_descendants() -> list[psutil.Process]:
    """The descendants of this process that have not exited (as a subreaper: every orphan of its tree too)."""
    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def kill_descendants(*, seconds: float = KILL_SECONDS) -> int:
    """SIGKILL every descendant until none is left (or ``seconds`` passed); returns how many were killed."""
    killed: set[int] = set()
    deadline = time.monotonic() + seconds
    while True:
        procs = live_descendants()
        if not procs or time.monotonic() > deadline:
            break
        _sigkill(procs, killed)
        time.sleep(POLL_SECONDS / 5)
    reap()
    return len(killed)


def _status_text(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"


class Keeper:
    """The head and the launcher, watched from one loop (no threads: ``waitpid(-1)`` reaps every orphan)."""

    def __init__(self, marker: str, temp_dir: Path, command: list[str]) -> None:
        self.marker = marker
        self.temp_dir = temp_dir
        self.command = command
        self.head: subprocess.Popen[bytes] | None = None
        self.head_status: int | None = None
        self.terminated = False

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        self.terminated = True

    def report(self, line: str) -> None:
        """One line to the launcher (which may be gone: then nobody listens)."""
        try:
            os.write(sys.stdout.fileno(), f"{line}\n".encode())
        except OSError:
            pass

    def _reap(self) -> None:
        for pid, status in reap().items():
            if self.head is not None and pid == self.head.pid:
                self.head_status = status
                self.head.returncode = os.waitstatus_to_exitcode(status)  # Popen must not wait for it again

    def _launcher_gone(self, timeout: float) -> bool:
        """True at end of file on stdin (or SIGTERM); waits at most ``timeout`` for it."""
        if self.terminated:
            return True
        try:
            readable, _, _ = select.select([sys.stdin.fileno()], [], [], timeout)
            return bool(readable) and not os.read(sys.stdin.fileno(), 4096)
        except InterruptedError:  # pragma: no cover - PEP 475 retries; a handler ran
            return self.terminated

    def run(self) -> int:
        """Start the head, report, wait for the launcher to go, leave nothing; the exit status."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, self._on_sigterm)
        if not become_subreaper():  # pragma: no cover - not Linux, or a kernel before 3.4
            print("launch: ray reaper: cannot become a subreaper; the marker sweep only", file=sys.stderr)
        with open(self.temp_dir / HEAD_LOG, "ab") as log:
            # SIGTERM if this process is killed: ray start then stops its processes itself.
            self.head = lifeline.popen(
                self.command,
                death_signal=signal.SIGTERM,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        ready = False
        failed = False
        while not self._launcher_gone(POLL_SECONDS * 2):
            self._reap()
            if self.head_status is not None:
                if not ready:
                    self.report(f"failed {_status_text(self.head_status)}")
                    failed = True
                    break
                self.report(f"exited {_status_text(self.head_status)}")
                break
            if not ready:
                address = read_address(self.temp_dir)
                if address is not None:
                    self.report(f"ready {address}")
                    ready = True
        killed = self.clean_up()
        if killed:
            print(f"launch: ray reaper killed {killed} process(es) left by the Ray session", file=sys.stderr)
        return 1 if failed else 0

    def clean_up(self) -> int:
        """Stop the head gracefully, then SIGKILL whatever of the session is left; returns how many were killed."""
        head = self.head
        if head is not None and self.head_status is None:
            try:
                head.send_signal(signal.SIGTERM)
            except ProcessLookupError:  # pragma: no cover - exited, not reaped yet
                pass
            deadline = time.monotonic() + HEAD_STOP_SECONDS
            while self.head_status is None and time.monotonic() < deadline:
                self._reap()
                time.sleep(POLL_SECONDS)
        killed = kill_descendants()
        killed += sweep(self.marker)
        self._reap()
        return killed


def main(argv: list[str]) -> int:
    """``MARKER TEMP_DIR -- HEAD_COMMAND...``: keep the head until the launcher goes (see the module's note)."""
    if len(argv) < 4 or argv[2] != "--" or not argv[0]:
        print("usage: python -m launcher.backends.ray_reaper MARKER TEMP_DIR -- HEAD_COMMAND...", file=sys.stderr)
        return 2
    return Keeper(argv[0], Path(argv[1]), argv[3:]).run()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
