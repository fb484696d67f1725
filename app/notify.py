"""The service's side of the sd_notify datagram protocol: encode and send.

systemd's readiness protocol is a newline-separated list of ``KEY=VALUE``
assignments sent as one datagram to the Unix socket named by
``$NOTIFY_SOCKET`` (a leading ``@`` means the abstract namespace). Workers
report to the launcher over a private socket of the same protocol
(``READY=1``, ``WATCHDOG=1``, ``STOPPING=1`` with ``WORKER=pid``); the
launcher's side (receiving, relaying to systemd) is :mod:`launcher.notify`,
which sends with these same functions.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping


def _address(path: str) -> str | bytes:
    if path.startswith("@"):
        return b"\0" + path[1:].encode()
    return path


def format_message(fields: Mapping[str, str | int | float]) -> bytes:
    """Encode assignments as one notify datagram; a newline in a key or value is refused."""
    lines = []
    for key, value in fields.items():
        text = f"{key}={value}"
        if "\n" in text or "=" in str(key):
            raise ValueError(f"notify field {key!r} = {value!r}: keys and values cannot hold newlines or '=' in keys")
        lines.append(text)
    return "\n".join(lines).encode()


SEND_TIMEOUT_S = 1.0
"""Longest a send may wait for room in the receiver's queue: it runs on a worker's event loop."""


def send(path: str, fields: Mapping[str, str | int | float], *, wait: bool = True) -> bool:
    """Send one datagram to ``path``; returns False (never raises) when nobody listens or there is no room.

    A datagram socket's send blocks while the receiver's queue is full (a
    launcher that has stopped reading, as it does while it shuts down), and
    it is called from event loops: it waits at most :data:`SEND_TIMEOUT_S`,
    and not at all with ``wait=False`` (periodic reports, where a dropped one
    is replaced by the next).
    """
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.settimeout(SEND_TIMEOUT_S if wait else 0.0)
            sock.sendto(format_message(fields), _address(path))
    except OSError:
        return False
    return True
