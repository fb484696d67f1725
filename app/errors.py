"""The root of the project's errors and the exit codes they carry.

Defined here, in the lowest layer, because the service's own settings and the
profiles (which sit below the launcher) raise errors of the same tree as the
launcher does; :mod:`launcher.errors` re-exports these and draws the whole tree.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Exit codes of the ``launch`` command (documented in the README)."""

    OK = 0
    EXPECTATION_FAILED = 1
    """``launch probe``: at least one expectation did not hold."""
    USAGE = 2
    """Bad option, bad profile, unreadable or malformed file."""
    STARTUP_FAILED = 3
    """The server could not start (app import, model load, worker boot)."""
    ADDRESS_IN_USE = 4
    """The address could not be bound (port in use, permission denied)."""
    NOT_STARTED = 5
    """``launch probe``: some profile did not start; every started one met its expectations."""
    SERVER_DIED = 6
    """The server stopped on its own after it was ready."""
    NONE_FIT = 7
    """``launch probe``: every expectation held, but no profile is fit to serve (nothing recommended)."""
    NOT_ENOUGH_MEMORY = 8
    """``launch probe``: a profile needs more memory than is available (``--force`` runs it anyway)."""
    TARGET_NOT_CARRIED = 9
    """``launch probe --target-rate``: every expectation held, but no fit profile carries the target rate."""
    INTERRUPTED = 130
    """Interrupted (Ctrl-C) before the work was done."""


class LaunchError(Exception):
    """Base of every error the library raises on purpose; ``str()`` is one line."""

    exit_code: ExitCode = ExitCode.USAGE


class ConfigError(LaunchError):
    """An option, a variable or a file holds a value the library cannot use."""

    exit_code = ExitCode.USAGE
