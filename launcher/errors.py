"""Typed errors of the library and the exit codes the CLI maps them to.

Every error the project raises on purpose is a :class:`LaunchError`; the
exit code of ``launch`` is on its class, so the CLI catches one type and
exits with ``exc.exit_code``. The tree (exit code; where it is defined)::

    * LaunchError               2  app.errors: the root, re-exported here
      x ConfigError             2  app.errors: an option, a variable or a file holds a value we cannot use
        + SettingsError            app.settings: a LAUNCH_* variable of the service
        + ProfileError             profiles.model: a profile, a profiles file, a name that matches none
        + AppLoadError             launcher.userapp: --app cannot be imported or is not an ASGI app
        + FrontNotFoundError       launcher.front: no caddy for a split profile's front
        + FrontConfigError         launcher.front: caddy refused its configuration
        + ScenarioFileError        launcher.probe.scenario_file: a --scenarios file
        + AppProbeError            launcher.probe.appprobe: the user's app cannot be probed
        + ResultFileError          launcher.probe.model: a probe result file (report, --resume, --from-report)
        + CapacityFileError        launcher.capacity.model: a capacity result file
        + RouteError               launcher.capacity.runner: --route names no GET route of the --app
        + NotComparableError       launcher.compare.model: two result files that cannot be compared (launch compare)
      x ResultWriteError        2  launcher.probe.store: a result file could not be written
      x NotEnoughMemoryError    8  launcher.probe.memory: a profile needs more memory than is available
      x BindError               4  here: the listening socket could not be bound
      x StartupError            3  here: the server failed before it was ready
      x ServerDiedError         6  here: the server stopped on its own after it was ready
      x BackendError            3  here: a backend's server failed; launcher.server re-raises it as one of the two above

``app.errors`` holds the root because the service and the profiles sit below
the launcher and raise errors of this tree too; this module is where the
tree is drawn (keep the drawing in step with the classes).
"""

from __future__ import annotations

import re

from app.errors import ConfigError, ExitCode, LaunchError

__all__ = [
    "BackendError",
    "BindError",
    "ConfigError",
    "ExitCode",
    "LaunchError",
    "ServerDiedError",
    "StartupError",
    "one_line",
]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def one_line(text: str) -> str:
    """``text`` with line breaks, tabs and other control characters folded into single spaces.

    What a one-line error, a log excerpt in a message or a unit-file comment
    is made of: a terminal or a file format would act on a control character.
    """
    return " ".join(_CONTROL.sub(" ", text).split())


class BindError(LaunchError):
    """The listening socket could not be bound."""

    exit_code = ExitCode.ADDRESS_IN_USE


class StartupError(LaunchError):
    """The server exited or failed before every worker was ready."""

    exit_code = ExitCode.STARTUP_FAILED


class ServerDiedError(LaunchError):
    """The server stopped on its own after it had been ready."""

    exit_code = ExitCode.SERVER_DIED


class BackendError(LaunchError):
    """Raised by a backend module when its server failed; :func:`launcher.server.serve` decides which it is.

    Before readiness it becomes a :class:`StartupError`, after it a :class:`ServerDiedError`;
    the exit code here is for a backend error that reaches the CLI some other way.
    """

    exit_code = ExitCode.STARTUP_FAILED
