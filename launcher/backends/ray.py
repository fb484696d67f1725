"""Ray Serve: the reference service in Serve replicas behind Ray's HTTP proxy (replicas play the part of workers).

By default the launcher starts a local Ray instance (``ray.init`` with the
machine's CPUs, no dashboard) and stops it fully afterwards. With
``RAY_ADDRESS`` (``launch --ray-address``) it deploys onto that cluster
instead and, on the way out, deletes only its own applications: a cluster it
did not start is never stopped.

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
lifespan, which sends ``READY`` with its pid to the launcher's notify socket
(inherited through the environment, which Ray's raylet passes on to its
workers), and the launcher's monitor waits for every replica and a 200 from
``/health`` through the proxy. ``serve.run_many`` returns once the
applications are RUNNING. Attribution headers carry the replica's pid.

Clean-up of a local instance, on every path: a normal stop (SIGINT or
SIGTERM) shuts Serve down gracefully, then Ray; :mod:`launcher.backends.ray_reaper`
(started first, in its own session) kills whatever of this Ray session is
left once the launcher has gone, SIGKILL of the launcher included.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from types import FrameType
from typing import Any

from launcher.backends.base import ServeSpec
from launcher.backends.ray_config import LOCAL_ONLY_SETTINGS, applications, deployment_options, replica_env
from launcher.backends.ray_reaper import OWNER_ENV
from launcher.errors import BackendError
from profiles.model import RAY_REAPER_WAIT_SECONDS, RAY_SERVE_SHUTDOWN_MARGIN_SECONDS, Profile

logger = logging.getLogger("launch")

ADDRESS_ENV = "RAY_ADDRESS"
"""An existing cluster to deploy onto (what ``ray.init`` itself reads; ``launch --ray-address`` sets it)."""
OBJECT_STORE_BYTES = 100 * 1024 * 1024
"""The local instance's object store: the service passes no objects through it (Ray's default is 30% of memory)."""
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
"""A local instance on loopback only. By default Ray's GCS, raylet, workers and agents listen on every
interface and advertise the machine's outward address (measured with Ray 2.60: ``*:PORT`` for the GCS and
the raylet, ``192.0.2.2`` for the runtime-env agent): a single-node instance that the network can reach,
which a systemd unit's ``IPAddressAllow=localhost`` also breaks. Ray's switch for "no cluster" (named for
the platforms where it is the default, and read when ``ray`` is first imported) makes its node address
127.0.0.1, and every one of those sockets then binds 127.0.0.1 (measured). Its processes inherit it from the
launcher's environment."""


class _Stop(BaseException):
    """A stop signal arrived while Ray was still starting: abandon the start and clean up."""


class RayServe:
    """One run: start or join Ray, deploy the profile's applications, wait for a signal, clean up."""

    def __init__(self, spec: ServeSpec) -> None:
        self.spec = spec
        self.address = os.environ.get(ADDRESS_ENV) or None
        self.stop = threading.Event()
        self.starting = True
        self.reaper: subprocess.Popen[bytes] | None = None
        self.connected = False

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop.set()
        if self.starting:
            self.starting = False  # raise once; a second signal during clean-up is not an error
            raise _Stop

    def _start_reaper(self) -> None:
        marker = f"{os.getpid()}-{secrets.token_hex(6)}"
        env = {k: v for k, v in os.environ.items() if k != OWNER_ENV}
        # Its stdin is a pipe whose only write end we hold (not inheritable: Ray's
        # processes must not keep it open), so it sees EOF when we exit, however.
        self.reaper = subprocess.Popen(
            [sys.executable, "-m", "launcher.backends.ray_reaper", marker],
            stdin=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        os.environ[OWNER_ENV] = marker

    def _take_signals(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)

    def run(self) -> None:
        """Serve until SIGINT or SIGTERM."""
        self._take_signals()
        try:
            self._start()
            self.starting = False
            self.stop.wait()
        except _Stop:
            logger.info("stopping while Ray was still starting")
        finally:
            self.starting = False
            self._clean_up()

    def _start(self) -> None:
        if self.address is None:
            # Before Ray's first import: it reads the switch into a constant then.
            os.environ.update(LOOPBACK_ENV)
        try:
            import ray
            from ray import serve
        except ImportError:
            raise BackendError("Ray Serve is not installed: pip install -e '.[ray]'") from None
        from launcher.backends.ray_app import LaunchService

        profile = self.spec.profile
        host, port = self.spec.sock.getsockname()[:2]
        # Ray's proxy binds the port itself (see the module's note).
        self.spec.sock.close()
        # Replicas are the raylet's children: the supervisor pid would make them exit (see ray_config).
        for key in LOCAL_ONLY_SETTINGS:
            os.environ.pop(key, None)
        cpus: float | None = None
        if self.address is None:
            self._start_reaper()
            cpus = float(os.cpu_count() or 1)
            # Ray's GCS, raylet and helpers are started here, in our process group: a
            # Ctrl-C in the terminal (SIGINT to the whole group) would kill them under
            # Serve, whose graceful shutdown then hangs. They inherit this thread's
            # signal mask, so SIGINT stays blocked in them; our own SIGINT is only
            # held until ray.init returns, then delivered.
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
            try:
                ray.init(
                    num_cpus=int(cpus),
                    include_dashboard=False,
                    object_store_memory=OBJECT_STORE_BYTES,
                    namespace="launch",
                    logging_level=logging.WARNING,
                )
            finally:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        else:
            ray.init(address=self.address, namespace="launch", logging_level=logging.WARNING)
            cpus = ray.cluster_resources().get("CPU")  # type: ignore[no-untyped-call]
        self.connected = True
        # ray.init installs its own SIGTERM handlers: a Python one that exits the driver, and the C++ core's
        # failure handler, which logs a stack trace and ends in SIGABRT (measured: exit -6, the graceful stop
        # cut short). Ours again, at once: the service can be READY (every replica reported, /health through
        # the proxy) while serve.run_many below still polls, and a stop may come then.
        self._take_signals()
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

    def _clean_up(self) -> None:
        try:
            if self.connected:
                self._stop_serve()
        finally:
            if self.reaper is not None:
                # EOF: the reaper sweeps what is left of this session, then exits.
                assert self.reaper.stdin is not None
                self.reaper.stdin.close()
                try:
                    self.reaper.wait(timeout=RAY_REAPER_WAIT_SECONDS)
                except subprocess.TimeoutExpired:
                    self.reaper.kill()
                    self.reaper.wait()

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

        # In a thread, with a deadline: a dead controller would make it wait for ever.
        worker = threading.Thread(target=graceful, name="launch-serve-shutdown", daemon=True)
        worker.start()
        deadline = self.spec.profile.timeout + RAY_SERVE_SHUTDOWN_MARGIN_SECONDS
        worker.join(deadline)
        if worker.is_alive():
            logger.warning("Serve's shutdown took over %.0f s; stopping Ray", deadline)
        # A local instance: stops the GCS, the raylet and its workers. A cluster's: only disconnects.
        ray.shutdown()


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
