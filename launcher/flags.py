"""The profile fields ``launch`` takes as command-line options: one table, read by everyone who builds or parses them.

``launch --profile NAME`` declares these options (:mod:`launcher.cli.root`), the probe's child command gives
every one of them explicitly (:func:`launcher.child.launch_command`) and a systemd unit gives those where the
profile differs from what its name resolves to (:func:`launcher.systemd.exec_args`). A new profile field that
``launch`` can override is added here, once. (The environment side needs no table: the service reads
``LAUNCH_`` + the upper-cased field name, :class:`app.settings.AppSettings`.)
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import click

from app.settings import MODES
from profiles.model import Profile


@dataclass(frozen=True, kw_only=True)
class ProfileOption:
    """One profile field as a ``launch`` option."""

    field: str
    """The :class:`profiles.model.Profile` field (and the Click parameter name)."""
    flag: str
    type: click.ParamType[Any] | None
    """Click's type: ranges are checked before a profile is built (None: a string)."""
    help: str


PROFILE_OPTIONS: tuple[ProfileOption, ...] = (
    ProfileOption(field="host", flag="--host", type=None, help="Bind address (default: the profile's, 127.0.0.1)."),
    ProfileOption(field="port", flag="--port", type=click.IntRange(0, 65535), help="Port (0: any free port)."),
    ProfileOption(
        field="workers", flag="--workers", type=click.IntRange(1, 64), help="Override the profile's worker count."
    ),
    ProfileOption(field="mode", flag="--mode", type=click.Choice(MODES), help="Override the handler mode."),
    ProfileOption(
        field="timeout",
        flag="--timeout",
        type=click.FloatRange(0, min_open=True),
        help="Override the timeout (seconds).",
    ),
    ProfileOption(
        field="concurrency_limit",
        flag="--concurrency-limit",
        type=click.IntRange(1),
        help="Override Gradio's concurrency_limit.",
    ),
    ProfileOption(
        field="limiter", flag="--limiter", type=click.IntRange(1), help="Override the offload limiter's capacity."
    ),
    ProfileOption(
        field="max_ongoing_requests",
        flag="--max-ongoing-requests",
        type=click.IntRange(1, 1024),
        help="Ray Serve: requests one replica runs at once (Ray's default: 5).",
    ),
    ProfileOption(
        field="model", flag="--model", type=None, help="'tiny', 'none' or a local diffusers pipeline folder."
    ),
    ProfileOption(
        field="disconnect_relay",
        flag="--disconnect-relay",
        type=click.BOOL,
        help="true: read the server's receive() in one task per request (a workaround for servers that break "
        "Gradio's event stream; see the probe's server conformance check).",
    ),
)
REFERENCE_ONLY_FIELDS: tuple[str, ...] = ("mode", "concurrency_limit", "limiter", "model")
"""Fields that configure the reference service itself: they mean nothing for a user's ``--app``."""
ADDRESS_FIELDS = frozenset({"host", "port"})
"""Fields a child serving on an inherited socket (``--fd``) does not need."""


def argument(value: object) -> str:
    """A field's value as one argument; floats by ``repr`` so the other side parses exactly the same number."""
    return repr(value) if isinstance(value, float) else str(value)


def profile_arguments(
    profile: Profile, *, skip: Collection[str] = (), unless_same_in: Profile | None = None
) -> list[str]:
    """``[flag, value, ...]`` for ``profile``'s fields, less ``skip`` and less those equal in ``unless_same_in``."""
    args: list[str] = []
    for option in PROFILE_OPTIONS:
        value = getattr(profile, option.field)
        if option.field in skip or (unless_same_in is not None and getattr(unless_same_in, option.field) == value):
            continue
        args += [option.flag, argument(value)]
    return args
