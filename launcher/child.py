"""A profile served by a ``launch`` child process: start, await readiness, stop.

The probe and the tests start each server as a real ``launch --profile``
child in its own process group, on a listening socket bound here and passed
down (``--fd``: no port race), and learn that it is ready the way systemd does:
the child sends ``READY=1`` on the ``$NOTIFY_SOCKET`` bound here once every
worker has loaded its model and ``/health`` answers. Stopping is SIGTERM to
the launcher, then SIGKILL to the whole group if anything outlives the grace
period; either way the group is empty when :meth:`ServerProcess.stop` returns.
If this process dies without stopping it (SIGKILL, a crash), the kernel sends
the child SIGTERM (:mod:`launcher.lifeline`), and it stops its workers as on
any SIGTERM.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from launcher import interrupts, lifeline, notify
from launcher.asgi import RELAY_LAG_ENV
from launcher.errors import StartupError
from launcher.flags import ADDRESS_FIELDS, REFERENCE_ONLY_FIELDS, profile_arguments
from launcher.procs import group_alive, kill_group
from launcher.server import bind_socket
from launcher.userapp import AppSpec
from profiles.model import Profile

DEFAULT_START_TIMEOUT = 180.0
"""How long a ``launch`` child may take to be ready (the probe, ``--start-timeout``, a unit's ``TimeoutStartSec=``
without a measurement, the benchmarks): a first start also builds the tiny model into an empty cache."""
DEFAULT_STOP_TIMEOUT = 15.0
INTERRUPTED_STOP_TIMEOUT = 5.0
"""After a Ctrl-C or SIGTERM to this process, a child gets this long to stop gracefully (its requests in flight
are given up), then its group is killed: the user asked to stop now, and the whole run ends within 15 s."""
LOG_TAIL_LINES = 15
GROUP_DRAIN_SECONDS = 2.0
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Server): ")


@dataclass(frozen=True, kw_only=True)
class NotifyEvent:
    """One notify message from the child, with the time it arrived (monotonic s)."""

    at: float
    fields: dict[str, str]


@dataclass(frozen=True, kw_only=True)
class StopResult:
    """How the child ended."""

    returncode: int | None
    seconds: float
    forced: bool
    """True when SIGKILL to the process group was needed."""


def launch_command(
    profile: Profile,
    *,
    fd: int,
    profiles_files: tuple[Path, ...] = (),
    log_level: str = "info",
    attribution: bool = True,
    lab: bool = False,
    app: AppSpec | None = None,
    health_path: str | None = None,
) -> list[str]:
    """The child's argv: the profile by name, every field given explicitly so the child runs exactly ``profile``."""
    argv = [sys.executable, "-m", "launcher"]
    for path in profiles_files:
        argv += ["--profiles-file", str(path)]
    argv += ["--profile", profile.name, "--fd", str(fd)]
    # The address comes with the socket; every other field is explicit, so a user profile of the same name
    # (or a catalog that changed since) cannot make the child serve something else.
    # A user's app: the reference service's own fields are left out (they would only be reported as ignored).
    argv += profile_arguments(profile, skip=ADDRESS_FIELDS | (set(REFERENCE_ONLY_FIELDS) if app else set()))
    if app is not None:
        argv += app.cli_args()
    if health_path is not None:
        argv += ["--health-path", health_path]
    argv += ["--log-level", log_level]
    # Driven by the probe (or a test): attribution headers on.
    argv.append("--attribution" if attribution else "--no-attribution")
    if lab:
        argv.append("--lab")
    return argv


@dataclass(kw_only=True)
class ServerProcess:
    """One ``launch --profile`` child. Use as a context manager or call start/stop."""

    profile: Profile
    profiles_files: tuple[Path, ...] = ()
    log_path: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    log_level: str = "info"
    attribution: bool = True
    """Attribution headers and worker internals: on, since the child is driven by a probe or a test."""
    lab: bool = False
    app: AppSpec | None = None
    """The user's app instead of the reference service."""
    health_path: str | None = None
    """Ready once this answers 200 (None: the child's default)."""
    hold_phase: str = "start"
    """The interrupt phase its start is (:func:`launcher.interrupts.reached`): where a test may hold it."""
    url: str = ""
    pids: tuple[int, ...] = ()
    ready_seconds: float = 0.0
    events: list[NotifyEvent] = field(default_factory=list)
    _proc: subprocess.Popen[bytes] | None = None
    _listener: notify.Listener | None = None
    _reader: threading.Thread | None = None
    _closing: threading.Event = field(default_factory=threading.Event)
    _ready: threading.Event = field(default_factory=threading.Event)
    _started_at: float = 0.0
    _own_log: bool = False

    @property
    def pid(self) -> int | None:
        """The launcher's pid (also its process group id)."""
        return self._proc.pid if self._proc else None

    def start(self, *, timeout: float = DEFAULT_START_TIMEOUT) -> None:
        """Start the child and wait until it is ready; :class:`StartupError` with its log tail if not.

        :class:`BindError` when no port can be bound on the profile's host.
        """
        host = self.profile.host if self.profile.host != "localhost" else "127.0.0.1"
        sock = bind_socket(host, 0)
        self._listener = notify.Listener()
        if self.log_path is None:
            handle, name = tempfile.mkstemp(prefix=f"launch-{self.profile.name}-", suffix=".log")
            os.close(handle)
            self.log_path = Path(name)
            self._own_log = True
        argv = launch_command(
            self.profile,
            fd=sock.fileno(),
            profiles_files=self.profiles_files,
            log_level=self.log_level,
            attribution=self.attribution,
            lab=self.lab,
            app=self.app,
            health_path=self.health_path,
        )
        env = {**os.environ, **self.env, "NOTIFY_SOCKET": self._listener.path, "PYTHONUNBUFFERED": "1"}
        if self.attribution:
            env[RELAY_LAG_ENV] = "1"  # this process reads the notify socket: lag reports are wanted
        self._started_at = time.monotonic()
        with open(self.log_path, "ab") as log:
            self._proc = lifeline.popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(sock.fileno(),),
                env=env,
                start_new_session=True,
            )
        sock.close()  # the child holds it now
        self._reader = threading.Thread(target=self._read_events, name="launch-child-notify", daemon=True)
        self._reader.start()
        try:
            interrupts.reached(self.hold_phase)  # the child runs, not ready yet: where a test may hold a start
            self._await_ready(timeout)
        except BaseException:
            # Ctrl-C (or anything) while waiting: the child must not outlive us.
            self.stop()
            raise

    def _await_ready(self, timeout: float) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.1):
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self.stop()
                raise StartupError(f"{self.profile.name} exited with status {code} before it was ready: {self.cause()}")
            if time.monotonic() > deadline:
                self.stop()
                raise StartupError(
                    f"{self.profile.name} was not ready after {timeout:g} s; last log line: {self.cause()}"
                )

    def _read_events(self) -> None:
        listener = self._listener
        assert listener is not None
        while not self._closing.is_set():
            message = listener.receive(timeout=0.2)
            if message is None:
                continue
            self.events.append(NotifyEvent(at=time.monotonic(), fields=message))
            if message.get("READY") == "1" and not self._ready.is_set():
                self.url = message.get("X_LAUNCH_URL", "")
                self.pids = tuple(int(p) for p in message.get("X_LAUNCH_WORKERS", "").split(",") if p)
                self.ready_seconds = time.monotonic() - self._started_at
                self._ready.set()

    def alive(self) -> bool:
        """True while the launcher runs."""
        return self._proc is not None and self._proc.poll() is None

    def worker_pids_now(self) -> tuple[int, ...]:
        """The latest worker set the child reported (changes when workers restart)."""
        for event in reversed(self.events):
            workers = event.fields.get("X_LAUNCH_WORKERS")
            if workers:
                return tuple(int(p) for p in workers.split(",") if p)
        return self.pids

    def log_text(self) -> str:
        """The child's whole log so far."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def cause(self) -> str:
        """The last exception line of the log (``SomeError: why``), or its last line."""
        lines = [line.strip() for line in self.log_text().splitlines() if line.strip()]
        for line in reversed(lines):
            if _EXCEPTION_LINE.match(line):
                return line
        return lines[-1] if lines else "(empty log)"

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last ``lines`` non-empty lines of the child's log, joined with `` | ``."""
        kept = [line.strip() for line in self.log_text().splitlines() if line.strip()]
        return " | ".join(kept[-lines:]) or "(empty log)"

    def stop(self, *, timeout: float = DEFAULT_STOP_TIMEOUT, sig: signal.Signals = signal.SIGTERM) -> StopResult:
        """Stop the child (``sig``, then SIGKILL to its group after ``timeout``); idempotent."""
        with interrupts.shielded():  # a Ctrl-C now is honoured once the child is gone, not halfway
            return self._stop(timeout=timeout, sig=sig)

    def _stop(self, *, timeout: float, sig: signal.Signals) -> StopResult:
        if interrupts.stopped() is not None:
            timeout = min(timeout, INTERRUPTED_STOP_TIMEOUT)
        started = time.monotonic()
        forced = False
        proc = self._proc
        if proc is not None:
            if proc.poll() is None:
                try:
                    proc.send_signal(sig)
                except ProcessLookupError:
                    pass
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    forced = kill_group(proc.pid)
            proc.wait()
            # Helpers that exit once the launcher is gone (multiprocessing's
            # resource tracker) get a moment; anything still there is killed.
            drain_deadline = time.monotonic() + GROUP_DRAIN_SECONDS
            while group_alive(proc.pid) and time.monotonic() < drain_deadline:
                time.sleep(0.02)
            forced = kill_group(proc.pid) or forced
        self._closing.set()
        if self._reader is not None:
            self._reader.join(timeout=2)
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        return StopResult(
            returncode=proc.returncode if proc is not None else None,
            seconds=time.monotonic() - started,
            forced=forced,
        )

    def cleanup(self) -> None:
        """Remove the log file if this object created it."""
        if self._own_log and self.log_path is not None:
            self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
