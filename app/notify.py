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


def send(path: str, fields: Mapping[str, str | int | float]) -> bool:
    """Send one datagram to ``path``; returns False (never raises) when nobody listens."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(format_message(fields), _address(path))
    except OSError:
        return False
    return True
