"""Ray Serve: the reference service in Serve replicas behind Ray's HTTP proxy (replicas play the part of workers).

By default the launcher starts a local Ray instance (the machine's CPUs, no
dashboard, on loopback) and stops it fully afterwards. With ``RAY_ADDRESS``
(``launch --ray-address``) it deploys onto that cluster instead and, on the
way out, deletes only its own applications: a cluster it did not start is
never stopped.

The local instance. Its head (``ray start --head --block``: the GCS, the
raylet, and through the raylet the agents and every worker) does not run in the
launcher but under :mod:`launcher.backends.ray_reaper`, a small process in its
own session that the launcher starts first and that makes itself a child
subreaper: every process of the instance is one of its descendants, whatever
dies first, and it kills them all once the launcher is gone, SIGKILL of the
launcher included (see that module for why: with ``ray.init`` in the launcher,
Ray's agents and workers outlived a SIGKILLed launcher). The reaper tells the
launcher when the head is up and its address (the GCS picks a free port
itself: ``--port=0``); the launcher then joins it as a driver
(``ray.init(address=...)``), as it joins a cluster. The head is started with
what ``ray.init`` gives a new local instance: the CPU count, no dashboard, a
small object store, usage stats off, token authentication (see
:func:`launcher.backends.ray_reaper.start_hook`), and the loopback switch below.
The launcher starts the head before it imports Ray and Serve, so the two
overlap. The instance keeps its files (logs included) in a temp dir of its own,
``$TMPDIR/launch-ray-*``, which the launcher logs, rather than ``/tmp/ray``. A
head that does not come up within ``RAY_HEAD_START_SECONDS`` (or exits first)
is one error line with Ray's own message; a head that exits once up stops the
launcher with an error.

The port. Ray's proxy is an actor in its own process: it binds its listener
itself (from ``http_options``) and cannot take the launcher's inherited
descriptor. The launcher therefore closes its socket (``binds_own_socket``:
:func:`launcher.server.serve` closes its copy too) and has the proxy bind the
same host and port. A forwarder that kept our socket would add a second hop
to every request, on top of the proxy's own; the price of rebinding is a
window of a few seconds in which the port is free. For the probe that is
harmless: it sends nothing before READY, and it closed its copy once the
child held it. The proxy sets ``SO_REUSEADDR`` so connections left in
TIME_WAIT do not block the bind.

Readiness works as for every backend: each replica runs the service's
lifespan, which sends ``READY`` with its pid to the launcher's notify socket,
and the launcher's monitor waits for every replica and a 200 from ``/health``
through the proxy. The replicas get the service's settings (the notify socket
among them) twice: in their application's ``runtime_env``, and in the
environment they inherit from the raylet, which is the head's: the launcher's
own environment when it started the reaper, which passes it on to ``ray
start``. ``serve.run_many`` returns once the applications are RUNNING.
Attribution headers carry the replica's pid.

Clean-up of a local instance, on every path: a normal stop (SIGINT or
SIGTERM) shuts Serve down gracefully and disconnects the driver; closing the
reaper's input then makes it stop the head (``ray start`` stops its processes on
SIGTERM), kill whatever is left and exit, which the launcher waits for. An
exception or a SIGKILL of the launcher closes that input just the same (the
kernel closes a dead process's pipes).
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import os
import queue
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from types import FrameType
from typing import Any

from launcher import procs
from launcher.backends.base import ServeSpec
from launcher.backends.ray_config import (
    CPU_UNIT,
    LOCAL_ONLY_SETTINGS,
    applications,
    deployment_options,
    replica_env,
)
from launcher.backends.ray_reaper import OWNER_ENV, START_HOOK, START_HOOK_ENV, head_cause, sweep
from launcher.errors import BackendError, ConfigError
from profiles.model import (
    RAY_HEAD_START_SECONDS,
    RAY_REAPER_WAIT_SECONDS,
    RAY_SERVE_SHUTDOWN_MARGIN_SECONDS,
    Profile,
)

logger = logging.getLogger("launch")

ADDRESS_ENV = "RAY_ADDRESS"
"""An existing cluster to deploy onto (what ``ray.init`` itself reads; ``launch --ray-address`` sets it)."""
NOT_INSTALLED = "Ray Serve is not installed: pip install -e '.[ray]'"
ADDRESS_CHECK_SECONDS = 5.0
"""How long a ``--ray-address`` gets to accept a connection before the start is refused (``ray.init`` itself
retries an unreachable GCS for minutes, measured: still waiting after 2 min)."""
DEFAULT_GCS_PORT = 6379


AUTH_HINT = (
    "the cluster uses token authentication: set RAY_AUTH_MODE=token, with its token in ~/.ray/auth_token or "
    "RAY_AUTH_TOKEN"
)


def connect_reason(exc: BaseException) -> str:
    """Ray's reason for a failed connection to a cluster, in one line (its exceptions carry whole tracebacks)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    text = "\n".join(str(e) for e in chain)
    if "InvalidAuthToken" in text or "Unauthenticated" in text:
        return AUTH_HINT
    lines = [line.strip() for line in str(chain[-1]).splitlines() if line.strip()]
    return lines[-1] if lines else type(chain[-1]).__name__


def check_cluster_cpus(address: str, cpus: float | None, profile: Profile) -> None:
    """Refuse a cluster whose nodes offer no CPU for the profile's replicas: Serve would wait for them forever.

    Each replica asks for an equal share of the cluster's CPUs (:func:`launcher.backends.ray_config.replica_cpus`),
    so any CPU at all schedules them; none (a head started with ``--num-cpus 0`` and no worker node) never does.
    Raises :class:`ConfigError` (exit 2).
    """
    if cpus is None or cpus < CPU_UNIT * profile.processes:
        raise ConfigError(
            f"--ray-address {address}: the cluster's nodes offer {cpus or 0:g} CPUs, and {profile.name}'s "
            f"{profile.processes} replicas need some: add a worker node (a head started with --num-cpus 0 runs none)"
        )


def check_address(address: str, *, timeout: float = ADDRESS_CHECK_SECONDS) -> None:
    """Refuse, in one line, a cluster address that accepts no connection within ``timeout``.

    ``auto`` and ``local`` are Ray's own lookups of a cluster on this machine (they fail fast by themselves);
    ``ray://HOST:PORT`` is a Ray Client address; otherwise ``HOST[:PORT]`` is the head's GCS. Raises
    :class:`ConfigError` (exit 2).
    """
    if address in ("auto", "local"):
        return
    rest = address.removeprefix("ray://")
    try:
        parts = urllib.parse.urlsplit("//" + rest)
        host, port, extra = parts.hostname, parts.port or DEFAULT_GCS_PORT, parts.path or parts.query
    except ValueError:  # an unclosed IPv6 bracket, a port out of range, ...
        host, port, extra = None, None, ""
    if not host or port is None or extra:
        raise ConfigError(f"--ray-address {address!r}: expected HOST:PORT (a head's GCS), ray://HOST:PORT or auto")
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or type(exc).__name__)
        raise ConfigError(
            f"--ray-address {address}: no Ray cluster reachable at {host}:{port} ({reason} within {timeout:g} s)"
        ) from None


OBJECT_STORE_BYTES = 100 * 1024 * 1024
"""The local instance's object store: the service passes no objects through it (Ray's default is 30% of memory)."""
LOOPBACK_IP = "127.0.0.1"
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
"""A local instance on loopback only. By default Ray's GCS, raylet, workers and agents listen on every
interface and advertise the machine's outward address (measured with Ray 2.60: ``*:PORT`` for the GCS and
the raylet, ``192.0.2.2`` for the runtime-env agent): a single-node instance that the network can reach,
which a systemd unit's ``IPAddressAllow=localhost`` also breaks. Ray's switch for "no cluster" (named for
the platforms where it is the default, and read when ``ray`` is first imported) makes its node address
127.0.0.1, and every one of those sockets then binds 127.0.0.1 (measured). Every process of the instance
gets it from the head's environment, which is the launcher's; the driver (the launcher) reads it too."""
AUTH_ENV = "RAY_AUTH_MODE"
"""Token authentication, as ``ray.init`` turns it on for a new local instance (unless the user set the mode):
the head and the driver both read it, and both find the token in ``~/.ray/auth_token``."""
LOST_HEAD_SIGNAL_SECONDS = 1.0
"""How often a start that outlived its head is signalled again (see :meth:`RayServe._lose_head`)."""
HEAD_ENV = {
    START_HOOK_ENV: START_HOOK,
    # On SIGTERM, ray start first asks the GCS to drain the node and waits (30 s by default) for Serve to move
    # its replicas elsewhere. There is no elsewhere, and Serve is already shut down on a normal stop.
    "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
}
"""For ``ray start`` only (the hook removes itself from the environment its processes inherit; they ignore the
other)."""


def head_command(temp_dir: Path, cpus: int) -> list[str]:
    """``ray start`` for the local instance's head: what ``ray.init`` gives a new local instance.

    ``--port=0``: the GCS binds a free port itself (no race with another
    program), and ``ray start`` writes the address into its own temp dir,
    private to this instance, where the reaper reads it. ``ray start`` runs
    from this interpreter, whose environment has Ray (not whatever ``ray`` is
    on ``PATH``).
    """
    return [
        sys.executable,
        "-m",
        "ray.scripts.scripts",
        "start",
        "--head",
        "--block",
        "--port=0",
        f"--node-ip-address={LOOPBACK_IP}",
        f"--num-cpus={cpus}",
        "--include-dashboard=false",
        f"--object-store-memory={OBJECT_STORE_BYTES}",
        "--disable-usage-stats",
        f"--temp-dir={temp_dir}",
    ]


class _Stop(KeyboardInterrupt):
    """A stop signal arrived while Ray was still starting: abandon the start and clean up.

    A ``KeyboardInterrupt``, because that is the one exception Ray's blocking
    calls honour. They wait in compiled code that polls for signals
    (``_raylet.check_signals``), and it turns a ``KeyboardInterrupt`` from a
    handler into an interruption of the call; any other exception raised there
    is printed and dropped, and the call goes on waiting (measured with Ray
    2.60: a ``BaseException`` raised 1 s into a ``ray.get`` of a 6 s task ended
    it only after 6.1 s, as a ``SystemError``; a ``KeyboardInterrupt`` ended it
    after 1.0 s). On a dead instance that wait is a minute, then the driver
    aborts: the launcher sat there while its head was gone.
    """


class RayServe:
    """One run: start or join Ray, deploy the profile's applications, wait for a signal, clean up."""

    def __init__(self, spec: ServeSpec) -> None:
        self.spec = spec
        self.address = os.environ.get(ADDRESS_ENV) or None
        self.stop = threading.Event()
        self.starting = True
        self.connected = False
        self.reaper: subprocess.Popen[bytes] | None = None
        self.marker = ""
        self.temp_dir: Path | None = None
        self.reports: queue.Queue[str] = queue.Queue()
        """The reaper's lines (``ready ADDRESS``, ``failed STATUS``, ``exited STATUS``); ``""`` once it is gone."""
        self.reader: threading.Thread | None = None
        self.closing = False
        self.interruptible = False
        """Our signal handlers are in place (not Ray's): a stop signal interrupts the start."""
        self.head_lost: str | None = None
        """Why the local instance went away on its own, once it did."""
        self.leaving = False
        """run() has taken a stop (or the start ended): a signal no longer raises."""

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop.set()
        if self.starting and not self.leaving:
            # Raised again by a later signal until run() has taken one (whatever dropped the first); never
            # during the clean-up, where a second signal is not an error.
            raise _Stop

    def _take_signals(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)

    def run(self) -> None:
        """Serve until SIGINT or SIGTERM (or until a local instance goes away: :class:`BackendError`)."""
        self._take_signals()
        try:
            self._start()
            self.starting = False
            self.stop.wait()
        except KeyboardInterrupt:  # our _Stop, or Ray's own KeyboardInterrupt for it (see _Stop)
            self.leaving = True
            self._note_stop()
        except Exception as exc:
            self.leaving = True
            if _caused_by_stop(exc):
                # Raised inside Ray's compiled code, _Stop comes back wrapped (measured: "SystemError: <built-in
                # method __new__ ...> returned a result with an exception set", from serve.run_many).
                self._note_stop()
            elif self.head_lost is None:
                raise
            # Else the instance died under the start: its own message says more than the driver's error.
        finally:
            self.leaving = True
            self.starting = False
            self._clean_up()
        if self.head_lost is not None:
            raise BackendError(self.head_lost)

    def _note_stop(self) -> None:
        if self.head_lost is None:
            logger.info("stopping while Ray was still starting")

    def _start(self) -> None:
        local = self.address is None
        if local:
            # Before Ray's first import: it reads the switch into a constant then.
            os.environ.update(LOOPBACK_ENV)
            os.environ.setdefault(AUTH_ENV, "token")
        if importlib.util.find_spec("ray") is None:
            raise BackendError(NOT_INSTALLED)
        profile = self.spec.profile
        host, port = self.spec.sock.getsockname()[:2]
        # Ray's proxy binds the port itself (see the module's note).
        self.spec.sock.close()
        # Replicas are the raylet's children: the supervisor pid would make them exit (see ray_config).
        for key in LOCAL_ONLY_SETTINGS:
            os.environ.pop(key, None)
        if self.address is not None:
            check_address(self.address)
        cpus: float | None = float(os.cpu_count() or 1) if local else None
        if cpus is not None:
            self._start_head(int(cpus))  # it comes up while we import Ray and Serve
        try:
            import ray
            from ray import serve
        except ImportError:
            raise BackendError(NOT_INSTALLED) from None
        from launcher.backends.ray_app import LaunchService

        try:
            ray.init(
                address=self._wait_for_head() if local else self.address,
                namespace="launch",
                logging_level=logging.WARNING,
            )
        except (ConnectionError, RuntimeError) as exc:
            if local:
                raise
            raise ConfigError(f"--ray-address {self.address}: Ray could not connect: {connect_reason(exc)}") from None
        if not local:
            cpus = ray.cluster_resources().get("CPU")  # type: ignore[no-untyped-call]
            # Before anything is deployed: nothing of ours to remove (Ray disconnects this driver at exit).
            check_cluster_cpus(self.address or "", cpus, profile)
        self.connected = True
        # ray.init installs its own SIGTERM handlers: a Python one that exits the driver, and the C++ core's
        # failure handler, which logs a stack trace and ends in SIGABRT (measured: exit -6, the graceful stop
        # cut short). Ours again, at once: the service can be READY (every replica reported, /health through
        # the proxy) while serve.run_many below still polls, and a stop may come then.
        self._take_signals()
        self.interruptible = True
        serve.start(http_options={"host": host, "port": port}, proxy_location="EveryNode")
        env = replica_env(dict(os.environ))
        targets = []
        for app in applications(profile):
            options: dict[str, Any] = deployment_options(profile, app, cpus=cpus)
            options["ray_actor_options"]["runtime_env"] = {"env_vars": env}
            targets.append(
                serve.RunTarget(
                    target=LaunchService.options(**options).bind(), name=app.name, route_prefix=app.route_prefix
                )
            )
        started = time.monotonic()
        serve.run_many(targets)
        logger.info(
            "Serve applications running after %.1f s: %s",
            time.monotonic() - started,
            ", ".join(f"{a.name} at {a.route_prefix} ({a.replicas} replicas)" for a in applications(profile)),
        )

    def _start_head(self, cpus: int) -> None:
        """Start the reaper, which starts the head (see the module's note)."""
        self.marker = f"{os.getpid()}-{secrets.token_hex(6)}"
        try:
            self.temp_dir = Path(tempfile.mkdtemp(prefix="launch-ray-"))
        except OSError as exc:
            raise BackendError(f"cannot create a temp dir for Ray: {exc}") from None
        # The head's environment is ours (the service's settings, the notify socket, the loopback switch), marked:
        # every Ray process inherits it, and the reaper's second net finds them by the marker.
        env = {**os.environ, OWNER_ENV: self.marker, **HEAD_ENV}
        env.pop(ADDRESS_ENV, None)
        # Its stdin is a pipe whose only write end we hold (not inheritable), so it sees EOF when we
        # exit, however; its own session keeps a Ctrl-C in the terminal away from it and from Ray.
        self.reaper = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "launcher.backends.ray_reaper",
                self.marker,
                str(self.temp_dir),
                "--",
                *head_command(self.temp_dir, cpus),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        os.environ[OWNER_ENV] = self.marker  # the replicas' runtime_env carries it too (a LAUNCH_ setting)
        self.reader = threading.Thread(target=self._read_reports, name="launch-ray-reaper", daemon=True)
        self.reader.start()

    def _read_reports(self) -> None:
        reaper = self.reaper
        assert reaper is not None and reaper.stdout is not None
        up = False
        for raw in reaper.stdout:
            line = raw.decode(errors="replace").strip()
            self.reports.put(line)
            up = up or line.startswith("ready ")
            if line.startswith("exited ") and not self.closing:
                self._lose_head(f"Ray's local instance stopped: its head exited ({line.partition(' ')[2]})")
        self.reports.put("")
        if up and not self.closing:
            self._lose_head("Ray's local instance stopped: its reaper exited")

    def _lose_head(self, why: str) -> None:
        if self.head_lost is None:
            cause = head_cause(self.temp_dir, last_line=False) if self.temp_dir is not None else ""
            self.head_lost = f"{why}: {cause}" if cause else why  # the error the launcher ends with
        self.stop.set()
        # Serve's calls wait on the dead instance (measured: serve.run_many, a minute, then the driver aborts); a
        # stop signal interrupts them as a user's would, sent again until the start has given up. Not while
        # ray.init runs: its handlers are in place then (see _start), and it fails by itself.
        while self.starting and self.interruptible and not self.leaving:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(LOST_HEAD_SIGNAL_SECONDS)

    def _head_cause(self) -> str:
        return head_cause(self.temp_dir) if self.temp_dir is not None else "(no output)"

    def _wait_for_head(self) -> str:
        """The head's address once the reaper says it is up; :class:`BackendError` if it fails or takes too long."""
        started = time.monotonic()
        deadline = started + RAY_HEAD_START_SECONDS
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BackendError(
                    f"Ray's local head was not up after {RAY_HEAD_START_SECONDS:g} s: {self._head_cause()}"
                )
            try:
                line = self.reports.get(timeout=min(0.5, left))
            except queue.Empty:
                continue
            kind, _, rest = line.partition(" ")
            if kind == "ready":
                logger.info(
                    "local Ray instance up at %s after %.1f s (its logs: %s)",
                    rest,
                    time.monotonic() - started,
                    self.temp_dir,
                )
                return rest
            if kind == "failed":
                raise BackendError(f"Ray's local head did not start ({rest}): {self._head_cause()}")
            if not line:
                raise BackendError(f"Ray's reaper exited before the head was up: {self._head_cause()}")

    def _clean_up(self) -> None:
        self.closing = True
        started = time.monotonic()
        try:
            if self.connected:
                self._stop_serve()
                logger.debug("Serve stopped and the driver disconnected after %.2f s", time.monotonic() - started)
        finally:
            if self.reaper is not None:
                self._stop_reaper(self.reaper)
                logger.debug("the local Ray instance stopped after %.2f s", time.monotonic() - started)

    def _stop_reaper(self, reaper: subprocess.Popen[bytes]) -> None:
        # EOF: the reaper stops the head, kills what is left of this instance, then exits.
        assert reaper.stdin is not None
        reaper.stdin.close()
        try:
            reaper.wait(timeout=RAY_REAPER_WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            logger.warning("Ray's reaper took over %.0f s: killing the local instance", RAY_REAPER_WAIT_SECONDS)
            # Everything of the instance is below the reaper while it lives: its tree first, then it.
            for pid in procs.descendants(reaper.pid):
                _kill(pid)
            reaper.kill()
            reaper.wait()
            sweep(self.marker)
        if self.reader is not None:
            self.reader.join(timeout=1)

    def _stop_serve(self) -> None:
        import ray
        from ray import serve

        def graceful() -> None:
            try:
                if self.address is None:
                    serve.shutdown()  # type: ignore[no-untyped-call]
                else:
                    # Not our cluster: remove our applications, leave Serve and Ray running.
                    for app in applications(self.spec.profile):
                        serve.delete(app.name)
            except Exception as exc:  # a cluster that died under us: nothing left to stop gracefully
                logger.warning("Serve did not stop cleanly: %s", exc)

        if self.head_lost is not None:
            # Nothing to stop or to disconnect from. The driver's disconnect (ray.shutdown, also run at exit)
            # would wait a minute for the dead GCS, then abort the process (measured).
            atexit.unregister(ray.shutdown)
            return
        # In a thread, with a deadline: a dead controller would make it wait for ever.
        worker = threading.Thread(target=graceful, name="launch-serve-shutdown", daemon=True)
        worker.start()
        deadline = self.spec.profile.timeout + RAY_SERVE_SHUTDOWN_MARGIN_SECONDS
        worker.join(deadline)
        if worker.is_alive():
            logger.warning("Serve's shutdown took over %.0f s; stopping Ray", deadline)
        # Disconnects this driver, local instance or cluster alike (the reaper stops a local instance).
        ray.shutdown()


def _caused_by_stop(exc: BaseException) -> bool:
    """True if ``exc`` was raised while handling (or because of) our :class:`_Stop`.

    Any ``KeyboardInterrupt`` in the chain counts: our handlers own SIGINT and SIGTERM while Ray starts, and
    Ray turns the :class:`_Stop` it honours into a ``KeyboardInterrupt`` of its own.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def expected_reports(profile: Profile) -> int:
    """Replicas that will report ready: all on a local instance; none counted on a cluster.

    A cluster's replicas may run on other machines, which cannot reach the
    launcher's notify socket (a Unix socket): there readiness is the
    applications RUNNING and ``/health`` answering through the proxy.
    """
    return 0 if os.environ.get(ADDRESS_ENV) else profile.processes


class Backend:
    """Ray Serve, embedded: one application, ``workers`` replicas."""

    name = "ray"
    binds_own_socket = True
    expected_reports = staticmethod(expected_reports)

    def serve(self, spec: ServeSpec) -> None:
        """Serve ``spec.profile`` on Ray Serve until SIGINT or SIGTERM."""
        RayServe(spec).run()
