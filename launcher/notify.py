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

import contextlib
import os
import socket
import stat
import tempfile
import time
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


FOLDER_PREFIX = "launch-ctl-"
SOCKET_NAME = "notify.sock"
STALE_AFTER_S = 60.0
"""A listener's folder younger than this is never taken for stale: it may be between its creation and its bind."""


def _receiving(path: Path) -> bool:
    """Whether a socket is bound at ``path`` and open.

    Connecting a datagram socket sends nothing, and is refused when no one holds the address any more.
    """
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    try:
        probe.connect(str(path))
    except OSError:
        return False
    finally:
        probe.close()
    return True


def remove_stale(root: Path, *, now: float | None = None) -> list[Path]:
    """Remove the listener folders under ``root`` that a SIGKILLed launcher left: nothing else can.

    A folder is stale when it is ours (same uid), older than :data:`STALE_AFTER_S`, holds nothing but its
    socket, and no one receives on that socket. Returns the folders removed.
    """
    removed: list[Path] = []
    now = time.time() if now is None else now
    uid = os.getuid()
    for folder in root.glob(FOLDER_PREFIX + "*"):
        with contextlib.suppress(OSError):
            info = folder.lstat()
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != uid or now - info.st_mtime < STALE_AFTER_S:
                continue
            entries = list(folder.iterdir())
            if any(entry.name != SOCKET_NAME for entry in entries):
                continue
            if entries and _receiving(entries[0]):
                continue
            for entry in entries:
                entry.unlink()
            folder.rmdir()
            removed.append(folder)
    return removed


class Listener:
    """A bound Unix datagram socket in a private folder, receiving notify messages."""

    def __init__(self) -> None:
        # The folders of launchers that were SIGKILLed (their close never ran) go with the next listener.
        remove_stale(Path(tempfile.gettempdir()))
        self._dir = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX))
        self.path = str(self._dir / SOCKET_NAME)
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
