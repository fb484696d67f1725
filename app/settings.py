"""Settings of the reference service, carried by environment variables.

Multi-worker uvicorn and hypercorn start workers with ``spawn`` and re-import
the application by name (an app object cannot be pickled), so everything a
worker needs travels as ``LAUNCH_*`` variables and is read by the factory in
each worker. This module imports nothing heavy: profiles and the CLI use it.
"""

from __future__ import annotations

import enum
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

from app.errors import ConfigError

ENV_PREFIX = "LAUNCH_"


class HandlerMode(enum.StrEnum):
    """How the API routes and demo buttons run their blocking work."""

    SYNC = "sync"
    """Plain ``def`` handlers: the server runs them in anyio's worker threads."""
    ASYNC = "async"
    """``async def`` handlers calling the blocking work directly: the event loop is blocked."""
    OFFLOAD = "offload"
    """``async def`` handlers that run the work in a thread under one shared limiter."""


MODES: tuple[str, ...] = tuple(m.value for m in HandlerMode)

# Caps on request parameters: a probe or a user can ask for long work, never unbounded work.
MAX_SECONDS = 120.0
MAX_STEPS = 50
MAX_PROMPT_CHARS = 500


class SettingsError(ConfigError):
    """An environment variable holds a value the service cannot use."""


@dataclass(frozen=True, kw_only=True)
class AppSettings:
    """What one worker of the reference service needs to know."""

    mode: HandlerMode = HandlerMode.SYNC
    concurrency_limit: int = 1
    limiter: int = 1
    model: str = "tiny"
    cpu_rate: float | None = None
    """Loop iterations per second for ``/test2``; measured at start-up when not given."""
    control_socket: str | None = None
    """Unix datagram socket of the launcher: workers report readiness and liveness there."""
    watchdog_interval: float = 0.0
    """Seconds between liveness pings sent from the event loop (0: none)."""
    supervisor_pid: int | None = None
    """The launcher's pid: a worker that is not the launcher dies with it."""
    attribution: bool = False
    """Expose worker internals (pid, in-flight count, clock) in /health and /ping: a probing aid, off in deployments."""
    lab: bool = False
    """Add the lab routes that reproduce the write-up's mistakes (``/lab/noawait``); never in a deployment."""
    disconnect_relay: bool = False
    """Serve the app behind the launcher's disconnect relay (the profile's ``disconnect_relay``)."""

    def __post_init__(self) -> None:
        if self.concurrency_limit < 1:
            raise SettingsError(f"concurrency_limit must be >= 1, got {self.concurrency_limit}")
        if self.limiter < 1:
            raise SettingsError(f"limiter must be >= 1, got {self.limiter}")
        if self.cpu_rate is not None and not (math.isfinite(self.cpu_rate) and self.cpu_rate > 0):
            raise SettingsError(f"cpu_rate must be a finite number > 0, got {self.cpu_rate}")
        if not (math.isfinite(self.watchdog_interval) and self.watchdog_interval >= 0):
            raise SettingsError(f"watchdog_interval must be a finite number >= 0, got {self.watchdog_interval}")
        if self.supervisor_pid is not None and self.supervisor_pid < 1:
            raise SettingsError(f"supervisor_pid must be a pid (>= 1), got {self.supervisor_pid}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AppSettings:
        """Read ``LAUNCH_*`` variables; a malformed value raises :class:`SettingsError` naming it."""
        env = os.environ if environ is None else environ

        def get(key: str) -> str | None:
            value = env.get(ENV_PREFIX + key)
            return value if value not in (None, "") else None

        def number(key: str, kind: type[int] | type[float]) -> int | float | None:
            raw = get(key)
            if raw is None:
                return None
            try:
                return kind(raw)
            except ValueError:
                raise SettingsError(f"{ENV_PREFIX}{key}={raw!r} is not a valid {kind.__name__}") from None

        raw_mode = get("MODE") or HandlerMode.SYNC.value
        if raw_mode not in MODES:
            raise SettingsError(f"{ENV_PREFIX}MODE={raw_mode!r} is not one of {', '.join(MODES)}")
        concurrency_limit = number("CONCURRENCY_LIMIT", int)
        limiter = number("LIMITER", int)
        cpu_rate = number("CPU_RATE", float)
        watchdog = number("WATCHDOG_INTERVAL", float)
        supervisor = number("SUPERVISOR_PID", int)
        try:
            return cls(
                mode=HandlerMode(raw_mode),
                concurrency_limit=int(concurrency_limit) if concurrency_limit is not None else 1,
                limiter=int(limiter) if limiter is not None else 1,
                model=get("MODEL") or "tiny",
                cpu_rate=float(cpu_rate) if cpu_rate is not None else None,
                control_socket=get("CONTROL_SOCKET"),
                watchdog_interval=float(watchdog) if watchdog is not None else 0.0,
                supervisor_pid=int(supervisor) if supervisor is not None else None,
                attribution=get("ATTRIBUTION") == "1",
                lab=get("LAB") == "1",
                disconnect_relay=get("DISCONNECT_RELAY") == "1",
            )
        except SettingsError as exc:
            # Messages start with the field's name; name the variable the user set.
            field_name = str(exc).split(" ", 1)[0]
            raise SettingsError(f"{ENV_PREFIX}{field_name.upper()}: {exc}") from None

    def to_env(self) -> dict[str, str]:
        """The variables that make :meth:`from_env` return these settings in a worker."""
        env = {
            "MODE": self.mode.value,
            "CONCURRENCY_LIMIT": str(self.concurrency_limit),
            "LIMITER": str(self.limiter),
            "MODEL": self.model,
            "WATCHDOG_INTERVAL": repr(self.watchdog_interval),
        }
        if self.cpu_rate is not None:
            env["CPU_RATE"] = repr(self.cpu_rate)
        if self.control_socket is not None:
            env["CONTROL_SOCKET"] = self.control_socket
        if self.supervisor_pid is not None:
            env["SUPERVISOR_PID"] = str(self.supervisor_pid)
        env["ATTRIBUTION"] = "1" if self.attribution else "0"
        env["LAB"] = "1" if self.lab else "0"
        env["DISCONNECT_RELAY"] = "1" if self.disconnect_relay else "0"
        return {ENV_PREFIX + k: v for k, v in env.items()}
