"""granian: its ``MPServer`` (the server its CLI runs), serving on the launcher's socket.

granian's server binds its own listener from an address and port: on Linux
each worker builds the listener itself (``ListenerSpec``), and only on Windows
does the main process hand a bound socket (``SocketHolder``) to its workers.
The launcher binds the socket and passes it down, so :class:`_FdServer`
replaces that one step: it wraps the launcher's descriptor in a
``SocketHolder`` and takes granian's own hand-over path. The workers are
forked (or spawned) children of the launcher, which is what readiness,
``PR_SET_PDEATHSIG`` and the clean-up in :mod:`launcher.server` rely on.
"""

from __future__ import annotations

import socket
from typing import Any

from launcher.backends.base import APP_FACTORY, LISTEN_BACKLOG, ServeSpec
from launcher.errors import BackendError


def _server_class() -> type[Any]:
    from granian._granian import SocketHolder
    from granian.server.mp import MPServer

    class FdServer(MPServer):
        """``MPServer`` that serves on an inherited, listening socket instead of binding one."""

        def __init__(self, *args: Any, fd: int, **kwargs: Any) -> None:
            self._launch_fd = fd
            super().__init__(*args, **kwargs)

        def _init_shared_socket(self) -> None:
            # What granian's AbstractServer does for a socket it bound itself
            # on Windows: the holder goes to every worker, which serves on it.
            # granian's stub omits SocketHolder's constructor (fd, is_uds,
            # backlog) and its __init__ types these slots as None.
            holder: Any = SocketHolder
            self._ssp = None
            self._shd = holder(self._launch_fd, False, self.backlog)
            self._sfd = self._launch_fd  # type: ignore[assignment]
            # MPServer's part: keep a Python socket object for the workers too
            # (granian closes it at shutdown; the launcher gave us a dup).
            sock = socket.socket(fileno=self._sfd)
            sock.set_inheritable(True)
            self._sso = sock

    return FdServer


def load_app() -> Any:
    """Build the app in a granian worker, after making SIGINT and SIGTERM fatal again.

    A forked worker inherits the handlers granian's main process installed
    (they only set a flag on the main's server object) and installs its own
    only once the app is built. A stop that arrives while a worker still
    builds the app or loads its model was therefore ignored, and the main
    waited ``workers_kill_timeout`` before SIGKILLing it (measured: 30 s).
    With the default action such a worker simply dies, which is what a stop
    during start-up means; the lifespan has not started, so nothing is lost.

    The app is the one every backend serves (:data:`APP_FACTORY`): the user's
    ``--app`` or the reference service, in the attribution middleware. (It was
    the bare reference service: ``--app`` was ignored under granian, and its
    Gradio queue requests carried no ``x-launch-pid``.)
    """
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    from launcher.asgi import create_app

    return create_app()


def granian_server(spec: ServeSpec) -> Any:
    """A granian server for ``spec`` (not yet serving)."""
    from granian.constants import Interfaces
    from granian.log import LogLevels

    host, port = spec.sock.getsockname()[:2]
    return _server_class()(
        APP_FACTORY,
        fd=spec.sock.fileno(),
        # Only shown in granian's "Listening at" log line: the socket is ours.
        address=host,
        port=port,
        factory=True,
        interface=Interfaces.ASGI,  # ASGI with lifespan: the app loads its model there
        workers=spec.profile.workers,
        # A worker that dies is replaced, as uvicorn's and gunicorn's
        # supervisors do; granian's default is to shut the whole server down.
        respawn_failed_workers=True,
        # SIGTERM to a worker is a graceful stop; past this it is SIGKILLed.
        # granian's default (None) waits for ever.
        workers_kill_timeout=spec.timeout_seconds,
        log_level=LogLevels(spec.log_level),
        log_access=spec.access_log,
        # The socket already listens with the launcher's backlog; granian
        # also derives each worker's in-flight cap from this (backlog / workers).
        backlog=LISTEN_BACKLOG,
    )


class Backend:
    """granian, embedded."""

    name = "granian"

    def serve(self, spec: ServeSpec) -> None:
        """Run granian's main loop in this process; its workers are children of this process."""
        server = granian_server(spec)
        try:
            server.serve(target_loader=load_app, wrap_loader=False)
        except SystemExit as exc:  # granian's shutdown exits 1 when a worker died unexpectedly
            if exc.code not in (0, None):
                raise BackendError(f"granian stopped with exit status {exc.code} (a worker failed or died)") from None
