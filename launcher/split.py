"""The split topology on one machine: the demo in one process, the API in N, Caddy in front routing by path.

Every other multi-process set-up gives each worker its own Gradio queue, so a click's queue join and its event
stream can reach different processes; one process holds the demo whole but carries less API work. A split
profile (``topology = "split"``) runs three groups, all the launcher's children:

- **the demo group**: one uvicorn process serving the app, with the profile's mode and ``concurrency_limit``;
- **the API group**: ``workers`` single-worker servers of the profile's backend, each on its own loopback port
  the launcher bound, so that the front balances them (``least_conn``) instead of whichever worker's idle event
  loop accepts first (a shared socket under 3 gunicorn workers took 18 CPU requests 9/6/3); each keeps its
  backend's own worker timeout and restarts (a gunicorn member is a gunicorn arbiter with one worker);
- **the front**: Caddy (:mod:`launcher.front`) on the profile's address, serving on the socket the launcher bound
  (or was given with ``--fd``), with the app's demo paths to the demo group and the rest to the API group.

Each group member is a :mod:`launcher.split_member` process: the same :func:`launcher.server.serve` that
``launch --profile`` runs, reporting READY (and its worker's pids, watchdog pings and lag reports) to a notify
socket of this launcher. READY goes out once every member is ready and ``/health`` answers through the front.
A stop is bounded: the front stops accepting first (its requests in flight get the profile's timeout), then both
groups drain side by side; what is left after that is killed. Every member and Caddy are started under the
lifeline (:mod:`launcher.lifeline`): SIGKILL of the launcher sends them SIGTERM, and each member's worker dies
with its member in turn. Members and Caddy run in process groups of their own so that a Ctrl-C in the terminal
reaches the launcher only, which then stops them in that order.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

from app.settings import ENV_PREFIX
from app.work import calibrate_cpu_rate
from launcher import lifeline, notify, procs
from launcher.asgi import LAG_FIELD, RELAY_LAG_ENV
from launcher.errors import ServerDiedError, StartupError
from launcher.front import (
    FRONT_BIN_ENV,
    FrontConfig,
    FrontRoutes,
    error_line,
    find_front,
    front_failure,
    strip_colour,
)
from launcher.server import (
    DIRECT_OPENER,
    ReadyInfo,
    ServeOptions,
    bind_socket,
    health_ok,
    socket_from_fd,
    take_watchdog_seconds,
    url_of,
)
from launcher.split_member import MemberSpec
from launcher.userapp import APP_DIR_ENV, APP_ENV, FACTORY_ENV
from launcher.userapp import check as check_app
from profiles.model import SPLIT_DEMO_BACKEND, Profile, is_loopback

logger = logging.getLogger("launch")

DEMO_BACKEND = SPLIT_DEMO_BACKEND
REFERENCE_API_PATHS: tuple[str, ...] = (
    "/health",
    "/ping",
    "/test1",
    "/test2",
    "/generate",
    "/lab/*",
    "/docs",
    "/docs/*",
    "/redoc",
    "/openapi.json",
)
"""The reference service's own routes (:mod:`app.routes`, :mod:`app.lab` and FastAPI's docs): the API group's
paths; the demo is mounted at ``/`` and takes the rest. tests/launcher/test_split.py checks this against the app."""
FRONT_START_SECONDS = 30.0
"""How long Caddy may take, once every member is ready, to answer through the front (measured: under 0.2 s)."""
FRONT_CLOSE_SECONDS = 1.0
"""After SIGTERM, how long the front gets to close its listener before the groups are told to stop."""
STOP_MARGIN_SECONDS = 5.0
"""Beyond the profile's timeout, how long the groups get to drain before what is left is killed."""
POLL_SECONDS = 0.05
FRONT_GOMAXPROCS = 1
"""Go processors for Caddy (see :meth:`SplitRunner._front_env`)."""
PRIVATE_PREFIX = "launch-split-"
"""The launcher's private folder (Caddy's JSON and storage): ``launch-split-PID-*`` under the temp folder."""


@dataclass(kw_only=True)
class Member:
    """One member process of a group, and what it reported."""

    spec: MemberSpec
    address: str
    listener: notify.Listener
    sock: socket.socket
    """The member's listening socket: the launcher keeps it, so a replacement serves on the same port."""
    proc: subprocess.Popen[bytes] | None = None
    pids: tuple[int, ...] = ()
    ready: bool = False
    last_watchdog: float | None = None

    @property
    def alive(self) -> bool:
        """True while the member's process runs."""
        return self.proc is not None and self.proc.poll() is None


@dataclass(kw_only=True)
class Front:
    """Caddy, as this launcher's child; its log lines go to the launcher's log, its last error line is kept."""

    proc: subprocess.Popen[bytes]
    last_error: str | None = None
    _reader: threading.Thread | None = None

    def start_reading(self) -> None:
        """Copy Caddy's log to ours, keeping its last error line for a one-line failure."""
        self._reader = threading.Thread(target=self._read, name="launch-front-log", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        stream: IO[bytes] | None = self.proc.stderr
        if stream is None:
            return
        for raw in iter(stream.readline, b""):
            # Caddy colours its console log even into a pipe: the launcher's log is plain text.
            text = strip_colour(raw.decode(errors="replace").rstrip("\n"))
            found = error_line(text)
            if found is not None:
                self.last_error = found
            sys.stderr.write(f"caddy: {text}\n")
            sys.stderr.flush()

    def join(self) -> None:
        """Wait for the log copy to reach the end of Caddy's output."""
        if self._reader is not None:
            self._reader.join(timeout=2)


def routes_for(options: ServeOptions) -> FrontRoutes:
    """What goes to which group: the reference service's known routes, or the user's app's shape (checked once)."""
    if options.app is None:
        return FrontRoutes(demo_paths=("/",), api_paths=REFERENCE_API_PATHS)
    shape = check_app(options.app)
    if options.demo_paths:
        # Given: the app mounts its demo in a way the check cannot follow (a wrapper, a custom mount).
        return FrontRoutes(demo_paths=options.demo_paths, api_paths=shape.api_paths)
    return FrontRoutes(demo_paths=shape.demo_paths, api_paths=shape.api_paths)


def member_profiles(profile: Profile) -> list[tuple[str, Profile]]:
    """(role, profile) of every member: the demo's uvicorn process, then ``workers`` single-worker API servers."""
    base = {"workers": 1, "topology": "single", "host": "127.0.0.1", "port": 0}
    members = [("demo", profile.replace(backend=DEMO_BACKEND, **base))]
    members += [(f"api-{k}", profile.replace(**base)) for k in range(1, profile.workers + 1)]
    return members


@contextlib.contextmanager
def _stop_signals(stop: threading.Event) -> Iterator[None]:
    # The members' servers install their own handlers in their own processes; here, a signal only asks the
    # launcher to stop its groups in order (the front first).
    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _front_answers(url: str, health_path: str | None) -> bool:
    # Through the front: /health reaches an API member. An app without a health path: any answer but Caddy's own
    # "no upstream" (502/503) shows the front routes to a live group.
    if health_path is not None:
        return health_ok(url, timeout=2.0, path=health_path)
    try:
        with DIRECT_OPENER.open(f"{url}/", timeout=2.0) as response:
            return int(response.status) < 500
    except urllib.error.HTTPError as exc:
        return exc.code not in (502, 503, 504)
    except (urllib.error.URLError, OSError, ValueError):
        return False


@dataclass(kw_only=True)
class SplitRunner:
    """Start, watch and stop one split profile's three groups (see the module's note)."""

    options: ServeOptions
    on_ready: Callable[[ReadyInfo], None]
    members: list[Member] = field(default_factory=list)
    front: Front | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    ready: ReadyInfo | None = None
    _systemd: str | None = None
    _watchdog: float = 0.0
    _relay_lag: bool = False
    _last_watchdog: float = 0.0
    _dir: Path | None = None
    _env: dict[str, str] = field(default_factory=dict)
    """The members' environment, for a replacement started as its first one was."""

    def run(self) -> None:
        """Serve until a signal stops it; :class:`StartupError`, :class:`ServerDiedError` or a front error if not."""
        options = self.options
        profile = options.profile
        started = time.monotonic()
        # Before anything is bound or started: no caddy, or an app whose demo cannot be found, is one line.
        caddy = find_front(options.front_bin)
        routes = routes_for(options)
        sock = socket_from_fd(options.fd) if options.fd is not None else bind_socket(profile.host, profile.port)
        url = url_of(sock)
        if not is_loopback(sock.getsockname()[0]):
            logger.warning("listening on %s: the demo and the API have no authentication", url)
        self._systemd = notify.take_systemd_socket()
        self._watchdog = take_watchdog_seconds()
        self._relay_lag = os.environ.pop(RELAY_LAG_ENV, "") == "1"
        sweep_private_folders()
        self._dir = Path(tempfile.mkdtemp(prefix=f"{PRIVATE_PREFIX}{os.getpid()}-"))
        # The handlers stay through the stop: a second Ctrl-C must not cut the ordered stop short (it is
        # bounded anyway), and the lifeline covers a SIGKILL.
        with _stop_signals(self.stop):
            try:
                config = self._front_config(sock, routes)
                self._validate(caddy, config)
                self._start_members()
                self._await_members()
                self.front = self._start_front(caddy, config, sock)
                sock.close()  # Caddy holds the listener now: when it closes its copy, nothing accepts any more
                self._await_front(url, started)
                self._serve()
            finally:
                sock.close()
                self._stop_all()
                shutil.rmtree(self._dir, ignore_errors=True)

    # -- start -------------------------------------------------------------------------------------------------

    def _front_config(self, sock: socket.socket, routes: FrontRoutes) -> FrontConfig:
        assert self._dir is not None
        profile = self.options.profile
        for role, member_profile in member_profiles(profile):
            member_sock = bind_socket("127.0.0.1", 0)
            host, port = member_sock.getsockname()[:2]
            spec = MemberSpec(
                role=role,
                profile=member_profile,
                fd=member_sock.fileno(),
                log_level=self.options.log_level,
                access_log=self.options.access_log,
                attribution=self.options.attribution,
                lab=self.options.lab,
                app=self.options.app,
                health_path=self.options.health_path,
            )
            self.members.append(
                Member(spec=spec, address=f"{host}:{port}", listener=notify.Listener(), sock=member_sock)
            )
        return FrontConfig(
            listen_fd=sock.fileno(),
            api_upstreams=tuple(m.address for m in self.members[1:]),
            demo_upstream=self.members[0].address,
            routes=routes,
            health_path=self.options.health_path,
            grace_seconds=profile.timeout,
            log_level=self.options.log_level,
            access_log=self.options.access_log,
        )

    def _config_file(self, config: FrontConfig) -> Path:
        assert self._dir is not None
        path = self._dir / "caddy.json"
        path.write_text(json.dumps(config.to_json(), indent=1))
        return path

    def _front_env(self) -> dict[str, str]:
        assert self._dir is not None
        # Caddy keeps its (unused) certificate storage and autosave under these: the launcher's private folder,
        # never the user's home (which a systemd unit makes read-only).
        env = {**os.environ, "XDG_CONFIG_HOME": str(self._dir), "XDG_DATA_HOME": str(self._dir)}
        # One Go processor: least_conn chooses an upstream, then counts the request in flight, two steps that
        # two goroutines on two processors can interleave, both seeing the same counts. Measured on 2 loaded
        # cores: 6 concurrent CPU requests landed 1/2/3 in 1 burst of 15 (and 1 of 30) with Caddy's default, in
        # none of 30 with one processor, which also used less CPU per request; one core of Go proxying outruns
        # the Python workers behind it.
        env["GOMAXPROCS"] = str(FRONT_GOMAXPROCS)
        return env

    def _validate(self, caddy: str, config: FrontConfig) -> None:
        # `caddy validate` loads and provisions the configuration without serving it: a refusal is known in well
        # under a second, before N+1 servers spend half a minute loading the model.
        done = subprocess.run(
            [caddy, "validate", "--config", str(self._config_file(config))],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env=self._front_env(),
            check=False,
            timeout=FRONT_START_SECONDS,
        )
        if done.returncode != 0:
            lines = done.stderr.decode(errors="replace").splitlines()
            found = [e for e in (error_line(line) for line in lines) if e]
            raise front_failure(found[-1] if found else (lines[-1] if lines else f"exit status {done.returncode}"))

    def _start_members(self) -> None:
        options = self.options
        cpu_rate = options.cpu_rate or calibrate_cpu_rate_for(options)
        env = dict(os.environ)
        for key in (APP_ENV, FACTORY_ENV, APP_DIR_ENV, FRONT_BIN_ENV):
            env.pop(key, None)
        env.update({"GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_SHARE": "False", "PYTHONUNBUFFERED": "1"})
        if cpu_rate is not None:
            # One rate for every member: CPU work means the same amount in each.
            env[f"{ENV_PREFIX}CPU_RATE"] = repr(cpu_rate)
        if self._relay_lag:
            env[RELAY_LAG_ENV] = "1"
        if self._watchdog:
            # Each member relays its worker's pings; the launcher relays one when every member's are in time.
            env["WATCHDOG_USEC"] = str(int(self._watchdog * 1e6))
        self._env = env
        for member in self.members:
            self._spawn(member)

    def _spawn(self, member: Member) -> None:
        member.ready = False
        member.pids = ()
        member.last_watchdog = None
        member.proc = lifeline.popen(
            [sys.executable, "-m", "launcher.split_member"],
            stdin=subprocess.DEVNULL,
            pass_fds=(member.sock.fileno(),),
            env={**self._env, **member.spec.to_env(), "NOTIFY_SOCKET": member.listener.path},
            process_group=0,
        )

    def _check_members(self, *, before_ready: bool) -> None:
        for member in self.members:
            if member.proc is None or member.proc.poll() is None:
                continue
            what = f"the {member.spec.role} member exited with status {member.proc.returncode}"
            name = self.options.profile.name
            if before_ready:
                raise StartupError(f"{name}: {what} before it was ready (its error is in the log above)")
            if not member.ready:
                # Its replacement died before it was ready: a crash loop, not a worker lost under load.
                raise ServerDiedError(f"{name}: {what} before its replacement was ready")
            # A dead worker is replaced, as uvicorn's and hypercorn's supervisors and gunicorn's arbiter replace
            # theirs: a single-worker member cannot restart itself. Its socket stayed open here, so the front's
            # requests for it wait in the backlog for the replacement (the health checks move new ones away).
            for pid in member.pids:
                logger.warning("worker %d exited without stopping cleanly", pid)
            logger.warning("restarting the %s member (%s)", member.spec.role, what)
            self._spawn(member)
            self._relay_workers()

    def _await_members(self) -> None:
        while not all(m.ready for m in self.members):
            if self.stop.is_set():
                raise KeyboardInterrupt
            self._receive()
            self._check_members(before_ready=True)

    def _start_front(self, caddy: str, config: FrontConfig, sock: socket.socket) -> Front:
        path = self._config_file(config)
        proc = lifeline.popen(
            [caddy, "run", "--config", str(path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            pass_fds=(sock.fileno(),),
            env=self._front_env(),
            process_group=0,
        )
        front = Front(proc=proc)
        front.start_reading()
        return front

    def _await_front(self, url: str, started: float) -> None:
        assert self.front is not None
        deadline = time.monotonic() + FRONT_START_SECONDS
        while not _front_answers(url, self.options.health_path):
            if self.stop.is_set():
                raise KeyboardInterrupt
            if self.front.proc.poll() is not None:
                self.front.join()
                raise front_failure(self.front.last_error or f"exit status {self.front.proc.returncode}")
            self._check_members(before_ready=True)
            if time.monotonic() > deadline:
                raise StartupError(
                    f"{self.options.profile.name}: the front did not answer within {FRONT_START_SECONDS:g} s"
                )
            self._receive()
        pids = self.worker_pids()
        self.ready = ReadyInfo(url=url, pids=pids, seconds=time.monotonic() - started)
        self.on_ready(self.ready)
        demo = ",".join(str(p) for p in self.members[0].pids)
        self._to_systemd(
            READY=1,
            STATUS=f"{len(pids)} workers ready at {url} (demo: 1, API: {len(self.members) - 1}, front: caddy)",
            MAINPID=os.getpid(),
            X_LAUNCH_URL=url,
            X_LAUNCH_WORKERS=",".join(str(p) for p in pids),
            X_LAUNCH_DEMO_WORKERS=demo,
            # The groups' own addresses, for a bench that compares the front with a direct connection.
            X_LAUNCH_API_UPSTREAMS=",".join(m.address for m in self.members[1:]),
            X_LAUNCH_READY_SECONDS=f"{self.ready.seconds:.3f}",
        )

    # -- serving -----------------------------------------------------------------------------------------------

    def worker_pids(self) -> tuple[int, ...]:
        """Every member's worker pids, the demo's first."""
        return tuple(p for m in self.members for p in m.pids)

    def _to_systemd(self, **fields: str | int | float) -> None:
        if self._systemd:
            notify.send(self._systemd, fields)

    def _receive(self) -> None:
        # One short wait per member socket: N+1 sockets, a few messages a second each.
        for member in self.members:
            message = member.listener.receive(timeout=POLL_SECONDS / len(self.members))
            while message is not None:
                self._handle(member, message)
                message = member.listener.receive(timeout=0)

    def _handle(self, member: Member, message: dict[str, str]) -> None:
        workers = message.get("X_LAUNCH_WORKERS")
        if workers is not None:
            pids = tuple(int(p) for p in workers.split(",") if p.isdigit())
            if pids != member.pids:
                member.pids = pids
                self._relay_workers()
        if message.get("READY") == "1":
            member.ready = True
        if message.get("WATCHDOG") == "1":
            member.last_watchdog = time.monotonic()
        lag = message.get(LAG_FIELD)
        if lag is not None and self._relay_lag and self._systemd:
            notify.send(self._systemd, {LAG_FIELD: lag, "WORKER": message.get("WORKER", "")}, wait=False)

    def _relay_workers(self) -> None:
        # The probe reads the current worker set from these (a replaced worker, a restarted member).
        if self.ready is not None:
            pids = self.worker_pids()
            self._to_systemd(
                STATUS=f"{len(pids)} workers up at {self.ready.url}", X_LAUNCH_WORKERS=",".join(map(str, pids))
            )

    def _relay_watchdog(self) -> None:
        now = time.monotonic()
        if self._watchdog <= 0 or now - self._last_watchdog < self._watchdog / 4:
            return
        # Members being replaced do not hold the watchdog back (a replacement loads for longer than its period).
        ready = [m for m in self.members if m.ready]
        if ready and all(m.last_watchdog is not None and now - m.last_watchdog < self._watchdog for m in ready):
            self._to_systemd(WATCHDOG=1)
            self._last_watchdog = now

    def _serve(self) -> None:
        assert self.front is not None
        while not self.stop.is_set():
            self._receive()
            self._relay_watchdog()
            if self.front.proc.poll() is not None:
                self.front.join()
                why = self.front.last_error or f"exit status {self.front.proc.returncode}"
                raise ServerDiedError(f"{self.options.profile.name}: the front (caddy) exited: {why}")
            self._check_members(before_ready=False)

    # -- stop --------------------------------------------------------------------------------------------------

    def _stop_all(self) -> None:
        self._to_systemd(STOPPING=1, STATUS="stopping")
        deadline = time.monotonic() + self.options.profile.timeout + STOP_MARGIN_SECONDS
        front = self.front.proc if self.front is not None else None
        # The front first: it closes its listener at once, and lets its requests in flight finish (their
        # members are still serving); then both groups drain side by side.
        if front is not None and front.poll() is None:
            front.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                front.wait(timeout=FRONT_CLOSE_SECONDS)
        for member in self.members:
            if member.alive and member.proc is not None:
                member.proc.send_signal(signal.SIGTERM)
        procs_left = [p for p in (front, *(m.proc for m in self.members)) if p is not None]
        for proc in procs_left:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        killed = []
        for proc in procs_left:
            # Each in its own process group: a member's leftover worker goes with it.
            if procs.kill_group(proc.pid):
                killed.append(proc.pid)
            proc.wait()
        if self.front is not None:
            self.front.join()
        for member in self.members:
            member.listener.close()
            member.sock.close()
        if killed:
            logger.warning("killed %d member(s) of the split that outlived the stop: %s", len(killed), killed)


def sweep_private_folders(root: Path | None = None) -> list[Path]:
    """Remove the private folders of split launchers that are gone (a SIGKILL runs no clean-up); returns them.

    Only this user's, only ``launch-split-PID-*`` whose PID no longer runs.
    """
    removed = []
    for folder in (root or Path(tempfile.gettempdir())).glob(f"{PRIVATE_PREFIX}*-*"):
        pid = folder.name[len(PRIVATE_PREFIX) :].split("-", 1)[0]
        with contextlib.suppress(OSError):
            if (
                pid.isdigit()
                and folder.is_dir()
                and folder.stat().st_uid == os.getuid()
                and not procs.is_alive(int(pid))
            ):
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
    return removed


def calibrate_cpu_rate_for(options: ServeOptions) -> float | None:
    """The CPU route's rate for every member: the environment's, or calibrated once here (none for a user's app)."""
    from app.settings import AppSettings

    return AppSettings.from_env().cpu_rate or (None if options.app else calibrate_cpu_rate())


def serve_split(options: ServeOptions, *, on_ready: Callable[[ReadyInfo], None] | None = None) -> None:
    """Serve a split profile until a signal stops it (see the module's note); nothing outlives this call."""
    SplitRunner(options=options, on_ready=on_ready or (lambda info: None)).run()
