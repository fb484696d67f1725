"""The small interface every backend module implements."""

from __future__ import annotations

import math
import socket
from dataclasses import dataclass
from typing import Protocol

from profiles.model import Profile

LISTEN_BACKLOG = 2048
"""The listening socket's backlog, the same whichever server takes it."""

APP_FACTORY_MODULE = "launcher.asgi"
APP_FACTORY_NAME = "create_app"
APP_FACTORY = f"{APP_FACTORY_MODULE}:{APP_FACTORY_NAME}"
"""Import string of the served app's factory (the service in the attribution middleware): workers re-create it."""


@dataclass(frozen=True, kw_only=True)
class ServeSpec:
    """What a backend needs to serve one profile."""

    profile: Profile
    sock: socket.socket
    """A bound, listening socket; backends never bind themselves."""
    log_level: str = "info"
    access_log: bool = False

    @property
    def timeout_seconds(self) -> int:
        """The profile's timeout as whole seconds (what the servers accept)."""
        return max(1, math.ceil(self.profile.timeout))


class Backend(Protocol):
    """One server, embedded through its own Python API.

    ``serve`` blocks in the calling (main) thread until the server stops. The
    server installs its own SIGINT/SIGTERM handling; a stop by signal returns
    normally. A failure raises :class:`launcher.errors.BackendError` -- never
    ``SystemExit``, which the servers use internally and the backend catches.

    Two optional attributes, read with ``getattr`` by :func:`launcher.server.serve`
    (only the Ray backends have them): ``binds_own_socket = True`` makes the
    launcher close its socket before ``serve`` (the backend's server binds the
    same address itself), and ``expected_reports(profile) -> int`` says how
    many processes will report ready (default: ``profile.processes``).
    """

    name: str

    def serve(self, spec: ServeSpec) -> None:
        """Serve the reference app on ``spec.sock`` until stopped."""
