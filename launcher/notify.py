"""The launcher's side of the sd_notify datagram protocol: receive, and relay to systemd.

systemd's readiness protocol is a newline-separated list of ``KEY=VALUE``
assignments sent as one datagram to the Unix socket named by
``$NOTIFY_SOCKET`` (a leading ``@`` means the abstract namespace). The launcher
speaks it twice: workers report to the launcher over a private socket of the
same protocol (``READY=1``, ``WATCHDOG=1``, ``STOPPING=1`` with ``WORKER=pid``),
and the launcher relays an aggregate to systemd once every worker is ready.
Encoding and sending are the service's side (:mod:`app.notify`); the launcher
sends to systemd with them too, so they are re-exported here.
"""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path

from app.notify import format_message, send

__all__ = ["Listener", "format_message", "parse_message", "send", "take_systemd_socket"]


def parse_message(data: bytes) -> dict[str, str]:
    """Decode one notify datagram; lines without ``=`` are ignored as systemd does."""
    fields: dict[str, str] = {}
    # systemd splits on "\n" only (str.splitlines would also split on \r, \x85, ...).
    for line in data.decode(errors="replace").split("\n"):
        key, sep, value = line.partition("=")
        if sep:
            fields[key] = value
    return fields


def take_systemd_socket() -> str | None:
    """Remove ``$NOTIFY_SOCKET`` from the environment and return it.

    The launcher alone speaks to systemd. Servers embedded in it would
    otherwise find the variable and announce readiness themselves: gunicorn's
    arbiter sends ``READY=1`` before any worker has loaded anything.
    """
    return os.environ.pop("NOTIFY_SOCKET", None) or None


class Listener:
    """A bound Unix datagram socket in a private folder, receiving notify messages."""

    def __init__(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="launch-ctl-"))
        self.path = str(self._dir / "notify.sock")
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._sock.bind(self.path)

    def receive(self, timeout: float) -> dict[str, str] | None:
        """The next message, or None when none came within ``timeout`` seconds."""
        self._sock.settimeout(timeout)
        try:
            data = self._sock.recv(4096)
        except (TimeoutError, BlockingIOError):
            return None
        except OSError:
            return None
        return parse_message(data)

    def close(self) -> None:
        """Close the socket and remove its folder."""
        self._sock.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        try:
            self._dir.rmdir()
        except OSError:
            pass
