"""Serve one profile in the foreground: bind, start the backend, watch readiness, clean up.

The launcher process is the server's supervisor for every backend (uvicorn's
``Multiprocess``, gunicorn's arbiter and hypercorn's ``run`` all run in it),
so every worker is its child. Workers report to it over a private notify
socket (:mod:`launcher.notify`): ``READY=1`` once the model is loaded,
``WATCHDOG=1`` from their event loop, ``STOPPING=1`` on the way out. The
launcher declares the service ready when every worker reported ready and
``/health`` answers, and relays that to systemd when ``$NOTIFY_SOCKET`` is set.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

from app.settings import AppSettings
from app.work import calibrate_cpu_rate
from launcher import notify, procs
from launcher.asgi import LAG_FIELD, RELAY_LAG_ENV
from launcher.backends import get_backend
from launcher.backends.base import LISTEN_BACKLOG, ServeSpec
from launcher.errors import BackendError, BindError, ConfigError, ServerDiedError, StartupError
from launcher.userapp import APP_DIR_ENV, APP_ENV, FACTORY_ENV, AppSpec
from launcher.userapp import check as check_app
from profiles.model import SPLIT_TOPOLOGY, Profile, is_loopback

logger = logging.getLogger("launch")

STOP_GRACE_SECONDS = 5.0
"""How long leftover workers get after the backend returned, before SIGKILL."""
READY_HEALTH_TIMEOUT_SECONDS = 2.0
"""How long one readiness check waits for ``/health`` once every worker said READY. Readiness asks "does it
answer", not "how fast". Measured on 2 cores loaded by other jobs: through Ray Serve's proxy a /health took
about 0.48 s while the split topology's four replicas loaded the tiny model, and with a 0.5 s limit that
service was not ready within 180 s. On a quiet machine it is ready in 56-62 s with either limit."""


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port), inheritable by workers."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(LISTEN_BACKLOG)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise BindError(f"port {port} on {host} is already in use") from None
        raise BindError(f"cannot bind {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def socket_from_fd(fd: int) -> socket.socket:
    """Adopt an inherited, already listening socket (``--fd``)."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise BindError(f"file descriptor {fd} is not a usable socket: {exc.strerror or exc}") from None
    if sock.type != socket.SOCK_STREAM:
        raise BindError(f"file descriptor {fd} is not a TCP socket")
    sock.listen(LISTEN_BACKLOG)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    """``http://host:port`` a client on this machine can use for ``sock``."""
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


DIRECT_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
"""An opener that ignores http_proxy: health checks target this machine only."""


def health_ok(url: str, timeout: float = 1.0, path: str = "/health") -> bool:
    """True when ``GET url + path`` answers 200 within ``timeout`` (never through a proxy)."""
    try:
        with DIRECT_OPENER.open(f"{url}{path}", timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


@dataclass(frozen=True, kw_only=True)
class ReadyInfo:
    """What is known when the service became ready."""

    url: str
    pids: tuple[int, ...]
    seconds: float
    """From the launcher's start to readiness."""


@dataclass(kw_only=True)
class WorkerState:
    """What the launcher knows of one worker from its notify messages."""

    pid: int
    ready_at: float | None = None
    last_ping: float | None = None
    stopping: bool = False
    gone: bool = False


@dataclass(kw_only=True)
class Monitor:
    """Reads worker reports, decides readiness, relays to systemd (runs in a thread)."""

    listener: notify.Listener
    url: str
    expected_workers: int
    started: float
    on_ready: Callable[[ReadyInfo], None]
    watchdog_seconds: float = 0.0
    systemd_socket: str | None = None
    relay_lag: bool = False
    """Pass workers' event-loop lag reports on to the notify socket: only when a probe reads it
    (``LAUNCH_RELAY_LAG=1``); systemd has no use for them, and they would crowd its queue."""
    health_path: str | None = "/health"
    """Readiness also needs a 200 here (None: the workers' READY is enough)."""
    workers: dict[int, WorkerState] = field(default_factory=dict)
    ready: ReadyInfo | None = None
    _last_watchdog: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the monitor thread."""
        self._thread = threading.Thread(target=self._run, name="launch-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the monitor thread and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def to_systemd(self, **fields: str | int | float) -> None:
        """Send ``fields`` to systemd's notify socket, if the launcher was given one."""
        if self.systemd_socket:
            notify.send(self.systemd_socket, fields)

    def live_workers(self) -> list[WorkerState]:
        """Workers that said they are ready and are still running."""
        return [w for w in self.workers.values() if w.ready_at is not None and procs.is_alive(w.pid)]

    def _run(self) -> None:
        last_status = ""
        while not self._stop.is_set():
            message = self.listener.receive(timeout=0.1)
            now = time.monotonic()
            if message is not None:
                self._handle(message, now)
            if self.ready is None:
                self._check_ready(now)
            else:
                last_status = self._relay(now, last_status)

    def _handle(self, message: dict[str, str], now: float) -> None:
        try:
            pid = int(message.get("WORKER", ""))
        except ValueError:
            return
        state = self.workers.setdefault(pid, WorkerState(pid=pid))
        if message.get("READY") == "1":
            state.ready_at = now
            state.last_ping = now
            if self.ready is not None:
                logger.info("worker %d ready (replacement)", pid)
        if message.get("WATCHDOG") == "1":
            state.last_ping = now
        if message.get("STOPPING") == "1":
            state.stopping = True
        lag = message.get(LAG_FIELD)
        if lag is not None and self.relay_lag:
            # Event-loop lag reports (attribution on: a probe drives this server) go
            # through to whoever reads our notify socket, with the worker's pid.
            relayed: dict[str, str | int | float] = {LAG_FIELD: lag, "WORKER": pid}
            if self.systemd_socket:
                notify.send(self.systemd_socket, relayed, wait=False)

    def _check_ready(self, now: float) -> None:
        live = self.live_workers()
        if len(live) < self.expected_workers:
            return
        if self.health_path is not None and not health_ok(
            self.url, timeout=READY_HEALTH_TIMEOUT_SECONDS, path=self.health_path
        ):
            return
        self.ready = ReadyInfo(url=self.url, pids=tuple(sorted(w.pid for w in live)), seconds=now - self.started)
        self.on_ready(self.ready)
        self.to_systemd(
            READY=1,
            STATUS=f"{len(live)} workers ready at {self.url}",
            MAINPID=os.getpid(),
            X_LAUNCH_URL=self.url,
            X_LAUNCH_WORKERS=",".join(str(p) for p in self.ready.pids),
            X_LAUNCH_READY_SECONDS=f"{self.ready.seconds:.3f}",
        )

    def _note_exits(self) -> None:
        # A ready worker that vanished without saying STOPPING died (killed,
        # crashed, or timed out by its server); say so once, by pid, so a log
        # reader (the probe) can attribute it whatever the backend.
        for worker in self.workers.values():
            if worker.ready_at is not None and not worker.gone and not procs.is_alive(worker.pid):
                worker.gone = True
                if not worker.stopping:
                    logger.warning("worker %d exited without stopping cleanly", worker.pid)

    def _relay(self, now: float, last_status: str) -> str:
        self._note_exits()
        live = [w for w in self.live_workers() if not w.stopping]
        in_time = self.watchdog_seconds <= 0 or all(
            w.last_ping is not None and now - w.last_ping < self.watchdog_seconds for w in live
        )
        # systemd's watchdog fires when pings stop: relay only while every
        # worker's event loop has checked in within the watchdog period, and
        # no more often than a quarter of the period.
        due = now - self._last_watchdog >= self.watchdog_seconds / 4
        if self.watchdog_seconds > 0 and live and in_time and due:
            self.to_systemd(WATCHDOG=1)
            self._last_watchdog = now
        pids = ",".join(str(w.pid) for w in live)
        status = f"{len(live)}/{self.expected_workers} workers up at {self.url}"
        if f"{status} {pids}" != last_status:
            self.to_systemd(STATUS=status, X_LAUNCH_WORKERS=pids)
        return f"{status} {pids}"


@dataclass(frozen=True, kw_only=True)
class ServeOptions:
    """How to serve a profile."""

    profile: Profile
    fd: int | None = None
    """Serve on this inherited listening socket instead of binding host:port."""
    log_level: str = "info"
    access_log: bool = False
    cpu_rate: float | None = None
    """Iterations per second for ``/test2``; calibrated once here when None."""
    attribution: bool = False
    """Attribution headers on every response and worker internals in /health (a probing aid)."""
    lab: bool = False
    """The lab routes that reproduce the write-up's mistakes."""
    app: AppSpec | None = None
    """Serve the user's ASGI app instead of the reference service."""
    health_path: str | None = "/health"
    """Readiness also waits for a 200 here (None: every worker's startup having completed is enough)."""
    check_app: bool = True
    """Load ``app`` once in a separate interpreter before serving (a split's members skip it: checked once)."""
    front_bin: str | None = None
    demo_paths: tuple[str, ...] | None = None
    """The split topology with ``app``: the demo group's paths, given (``--demo-path``) rather than found."""
    """The split topology's front (``--front-bin``): this ``caddy`` instead of the one found (:mod:`launcher.front`)."""


def take_watchdog_seconds() -> float:
    """The watchdog period systemd gives for this process (0: none), taken out of the environment."""
    # systemd passes the watchdog period as WATCHDOG_USEC (for WATCHDOG_PID);
    # taken out of the environment so no embedded server acts on it too.
    raw = os.environ.pop("WATCHDOG_USEC", "0")
    owner = os.environ.pop("WATCHDOG_PID", "")
    if owner and owner != str(os.getpid()):
        return 0.0  # sd_watchdog_enabled(3): the period is meant for another process
    try:
        return max(0, int(raw)) / 1e6
    except ValueError:
        return 0.0


def serve(options: ServeOptions, *, on_ready: Callable[[ReadyInfo], None] | None = None) -> None:
    """Serve ``options.profile`` until a signal stops it.

    Raises :class:`BindError`, :class:`StartupError` or
    :class:`ServerDiedError`. Whatever happens, no worker outlives this call.
    """
    profile = options.profile
    if profile.topology == SPLIT_TOPOLOGY:
        # launcher.split serves those (its members are served here); the CLI picks it.
        raise ConfigError(f"{profile.name}: a split profile is served by launcher.split.serve_split")
    started = time.monotonic()
    if options.app is not None and options.check_app:
        # Before anything is bound or spawned: a bad --app is one line, not a traceback per worker.
        check_app(options.app)
    sock = socket_from_fd(options.fd) if options.fd is not None else bind_socket(profile.host, profile.port)
    url = url_of(sock)
    if not is_loopback(sock.getsockname()[0]):
        logger.warning("listening on %s: the demo and the API have no authentication", url)
    listener = notify.Listener()
    systemd_socket = notify.take_systemd_socket()
    watchdog = take_watchdog_seconds()
    settings = AppSettings(
        mode=profile.handler_mode,
        concurrency_limit=profile.concurrency_limit,
        limiter=profile.limiter,
        model=profile.model,
        # One rate for every worker (and, through LAUNCH_CPU_RATE, for every
        # profile of a probe run): CPU work means the same amount everywhere.
        # (A user's app has no CPU route of ours: no calibration to wait for.) A malformed
        # LAUNCH_CPU_RATE is a SettingsError, a ConfigError: one line from the CLI.
        cpu_rate=options.cpu_rate or AppSettings.from_env().cpu_rate or (None if options.app else calibrate_cpu_rate()),
        control_socket=listener.path,
        # Ping at half the watchdog period so one late ping is not a restart.
        watchdog_interval=watchdog / 2 if watchdog else 0.0,
        supervisor_pid=os.getpid(),
        attribution=options.attribution,
        lab=options.lab,
        disconnect_relay=profile.disconnect_relay,
    )
    # Workers are spawned or forked from here and read their settings from
    # the environment; Gradio must never phone home or open a share link.
    os.environ.update(settings.to_env())
    os.environ.update({"GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_SHARE": "False"})
    for key in (APP_ENV, FACTORY_ENV, APP_DIR_ENV):
        os.environ.pop(key, None)
    if options.app is not None:
        os.environ.update(options.app.to_env())
    backend = get_backend(profile.backend)
    monitor = Monitor(
        listener=listener,
        url=url,
        # The split topology's demo replica reports ready too; a backend may know better (Ray on a cluster).
        expected_workers=getattr(backend, "expected_reports", lambda p: p.processes)(profile),
        started=started,
        on_ready=on_ready or (lambda info: None),
        watchdog_seconds=watchdog,
        systemd_socket=systemd_socket,
        relay_lag=os.environ.pop(RELAY_LAG_ENV, "") == "1",
        health_path=options.health_path,
    )
    monitor.start()
    # The backend gets its own descriptor: gunicorn and hypercorn close the
    # socket they were given, and ours must stay valid until we close it.
    handoff = sock.dup()
    handoff.set_inheritable(True)
    if getattr(backend, "binds_own_socket", False):
        # Ray's proxy binds the port itself (launcher.backends.ray, which closes the handoff): ours must go too.
        sock.close()
    try:
        backend.serve(
            ServeSpec(profile=profile, sock=handoff, log_level=options.log_level, access_log=options.access_log)
        )
    except BackendError as exc:
        if monitor.ready is None:
            raise StartupError(f"{profile.name}: {exc}") from None
        raise ServerDiedError(f"{profile.name}: {exc}") from None
    finally:
        logger.debug("backend returned after %.2f s", time.monotonic() - started)
        monitor.to_systemd(STOPPING=1, STATUS="stopping")
        monitor.stop()
        listener.close()
        # Never close the handoff: if the backend closed it, its number may
        # already belong to another file. Detaching drops it without a close.
        handoff.detach()
        sock.close()
        tracker = procs.resource_tracker_pid()
        spare = frozenset([tracker]) if tracker is not None else frozenset()
        leftover = procs.terminate_tree(os.getpid(), grace=STOP_GRACE_SECONDS, spare=spare)
        logger.debug("cleaned up after %.2f s", time.monotonic() - started)
        if leftover:
            logger.warning("killed %d worker(s) that outlived the server: %s", len(leftover), leftover)
