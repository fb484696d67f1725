"""One member of a split topology: a single-worker server the split launcher started (``-m launcher.split_member``).

The split launcher (:mod:`launcher.split`) describes the member in ``$LAUNCH_SPLIT_MEMBER`` (JSON: the member's
profile and how to serve it) and hands it a bound loopback socket; the member serves it exactly as
``launch --profile`` serves any profile (:func:`launcher.server.serve`: its backend, its worker's timeout and
restarts, READY once ``/health`` answers), and reports to the split launcher over ``$NOTIFY_SOCKET`` as a
launcher reports to systemd. It dies with the split launcher (:mod:`launcher.lifeline`).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import sys
from dataclasses import dataclass
from typing import Any

from launcher.errors import ConfigError, ExitCode, LaunchError
from launcher.userapp import AppSpec
from profiles.model import Profile

MEMBER_ENV = "LAUNCH_SPLIT_MEMBER"


@dataclass(frozen=True, kw_only=True)
class MemberSpec:
    """What one member serves, and how: the split launcher's side writes it, the member reads it back."""

    role: str
    """``demo`` or ``api-K``: the prefix of the member's log lines."""
    profile: Profile
    fd: int
    log_level: str = "info"
    access_log: bool = False
    attribution: bool = False
    lab: bool = False
    app: AppSpec | None = None
    health_path: str | None = "/health"

    def __post_init__(self) -> None:
        if not self.role or not self.role.replace("-", "").isalnum():
            raise ConfigError(f"split member role {self.role!r}: expected letters, digits and '-'")
        if self.profile.workers != 1 or self.profile.topology != "single":
            raise ConfigError(f"split member {self.role}: expected a single-worker, single-topology profile")

    def to_env(self) -> dict[str, str]:
        """``$LAUNCH_SPLIT_MEMBER`` for the member's process."""
        data: dict[str, Any] = {
            "role": self.role,
            "profile": self.profile.to_dict(),
            "fd": self.fd,
            "log_level": self.log_level,
            "access_log": self.access_log,
            "attribution": self.attribution,
            "lab": self.lab,
            "app": None
            if self.app is None
            else {"target": self.app.target, "factory": self.app.factory, "app_dir": self.app.app_dir},
            "health_path": self.health_path,
        }
        return {MEMBER_ENV: json.dumps(data)}

    @classmethod
    def from_env(cls) -> MemberSpec:
        """Read ``$LAUNCH_SPLIT_MEMBER`` back (:class:`ConfigError` when it is missing or malformed)."""
        raw = os.environ.pop(MEMBER_ENV, "")
        try:
            data = json.loads(raw)
            app = data["app"]
            return cls(
                role=str(data["role"]),
                profile=Profile(**data["profile"]),
                fd=int(data["fd"]),
                log_level=str(data["log_level"]),
                access_log=bool(data["access_log"]),
                attribution=bool(data["attribution"]),
                lab=bool(data["lab"]),
                app=None if app is None else AppSpec(**app),
                health_path=data["health_path"],
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"${MEMBER_ENV}: not a split member's description ({exc})") from None


def main() -> int:
    """Serve the member described in the environment until a signal stops it; the exit code ``launch`` uses."""
    from launcher.server import ReadyInfo, ServeOptions, serve

    try:
        spec = MemberSpec.from_env()
    except LaunchError as exc:
        print(f"launch: error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    logging.basicConfig(level=spec.log_level.upper(), format=f"launch[{spec.role}]: %(message)s")
    logger = logging.getLogger("launch")

    def announce(info: ReadyInfo) -> None:
        logger.info("%s ready on %s (%s, pid %s)", spec.role, info.url, spec.profile.backend, info.pids[0])

    try:
        serve(
            ServeOptions(
                profile=spec.profile,
                fd=spec.fd,
                log_level=spec.log_level,
                access_log=spec.access_log,
                attribution=spec.attribution,
                lab=spec.lab,
                app=spec.app,
                check_app=False,  # the split launcher checked it once, for every member
                health_path=spec.health_path,
            ),
            on_ready=announce,
        )
    except LaunchError as exc:
        print(f"launch[{spec.role}]: error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        return int(ExitCode.INTERRUPTED)
    return int(ExitCode.OK)


if __name__ == "__main__":
    code = main()
    # As launch itself does: no module teardown (seconds with torch and Gradio imported) after the server stopped.
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
