"""``launch systemd``: the rendered unit, systemd's own checks of it, the notify protocol it relies on, the CLI."""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from launcher import procs
from launcher.cli import main
from launcher.cli import systemd as systemd_cli
from launcher.cli.systemd import editable_checkout, systemd_command
from launcher.errors import ConfigError
from launcher.probe.model import SCHEMA_VERSION
from launcher.procs import group_alive
from launcher.systemd import (
    HOME_TREES,
    UnitOptions,
    quote_arg,
    render_unit,
    start_timeout_seconds,
    stop_timeout_seconds,
)
from launcher.userapp import AppSpec
from profiles import Profile, builtin_profiles
from tests.http import get_json

pytestmark = pytest.mark.usefixtures("clean_cwd")  # never pick up a stray ./launch.toml

LAUNCH = Path(sys.executable).parent / "launch"
"""The real console script of this venv, for the CLI and the processes it starts. Its place depends on where
this clone is (under /root or /home, or not), so what a unit says about homes is never tested with it:
the unit tests below render for a :class:`Placement` instead."""


@dataclass(frozen=True)
class Placement:
    """Where the service's ``launch`` and its Python are, as the unit is told: what ``ProtectHome=`` depends on.

    Fixed paths, not this clone's or this venv's, so that every test says which case it is about.
    """

    launch: Path
    interpreter: Path
    protect_home: str
    """What ``ProtectHome=`` a system unit must say for it."""


OUTSIDE_HOME = Placement(
    launch=Path("/opt/launch/.venv/bin/launch"),
    interpreter=Path("/usr/lib/python3.11/bin/python3.11"),
    protect_home="yes",
)
"""Python not under a home tree: the service sees no home at all."""
UNDER_HOME = Placement(
    launch=Path("/home/ann/launch/.venv/bin/launch"),
    interpreter=Path("/home/ann/.pyenv/versions/3.11.7/bin/python3.11"),
    protect_home="read-only",
)
"""Python (a pyenv build) and the venv under /home: the service must read them."""
PYENV_UNDER_ROOT = Placement(
    launch=Path("/tmp/launch/.venv/bin/launch"),
    interpreter=Path("/root/.pyenv/versions/3.11.7/bin/python3.11"),
    protect_home="read-only",
)
"""A venv outside any home whose Python (the venv's symlink followed) is root's pyenv build."""
PLACEMENTS = pytest.mark.parametrize(
    "at", [OUTSIDE_HOME, UNDER_HOME, PYENV_UNDER_ROOT], ids=["outside-home", "under-home", "pyenv-under-root"]
)
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
MAX_EXPOSURE = 4.5


@pytest.fixture(scope="module")
def cli() -> click.Group:
    """``launch`` with the ``systemd`` command (launcher.cli registers it; guard for when it does not yet)."""
    if "systemd" not in main.commands:
        main.add_command(systemd_command)
    return main


def builtin(base: str = "uvicorn-1-async", **changes: Any) -> Profile:
    profile = builtin_profiles()[base]
    return profile.replace(**changes) if changes else profile


def options(at: Placement, **changes: Any) -> UnitOptions:
    """A unit for ``uvicorn-1-async`` whose ``launch`` and Python are where ``at`` says; ``changes`` on top."""
    fields: dict[str, Any] = {"profile": builtin(), "launch_path": at.launch, "interpreter": at.interpreter}
    fields.update(changes)
    return UnitOptions(**fields)


@pytest.fixture
def outside_home() -> Iterator[Path]:
    """A fresh folder under /tmp: pytest's tmp_path follows $TMPDIR, which may be under a home tree."""
    with tempfile.TemporaryDirectory(prefix="launch-systemd-test-", dir="/tmp") as folder:
        path = Path(folder)
        pure = PurePosixPath(path)
        assert not any(tree == pure or tree in pure.parents for tree in HOME_TREES)
        yield path


def fake_venv(folder: Path, *, shebang: Path) -> Path:
    """A venv-shaped folder whose ``bin/launch`` is an executable script run by ``shebang``."""
    launch = folder / "venv" / "bin" / "launch"
    launch.parent.mkdir(parents=True)
    launch.write_text(f"#!{shebang}\n")
    launch.chmod(0o755)
    return folder / "venv"


def settings(text: str) -> dict[str, list[str]]:
    """``Key`` -> every value it is assigned, over all sections (comments skipped)."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if not line or line.startswith(("#", "[")):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not an assignment: {line!r}"
        found.setdefault(key, []).append(value)
    return found


def exec_argv(text: str) -> list[str]:
    """ExecStart= split as systemd does for what render_unit writes: quotes, C escapes, then %% and $$."""
    (line,) = settings(text)["ExecStart"]
    return [word.replace("%%", "%").replace("$$", "$") for word in shlex.split(line)]


# --- render_unit ------------------------------------------------------------


def test_render_is_pure_and_deterministic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opts = options(OUTSIDE_HOME, env=("A=1",), ready_seconds=4.2)
    first = render_unit(opts)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NOTIFY_SOCKET", "/nowhere")
    monkeypatch.setenv("PATH", "/nowhere")
    monkeypatch.setenv("HOME", "/opt")
    assert render_unit(opts) == first
    assert render_unit(options(OUTSIDE_HOME, env=("A=1",), ready_seconds=4.2)) == first
    # Nothing is read from the machine: paths that do not exist render all the same.
    ghost = render_unit(options(OUTSIDE_HOME, launch_path=Path("/no/such/venv/bin/launch")))
    assert exec_argv(ghost)[0] == "/no/such/venv/bin/launch"
    # Where this clone and its Python are plays no part either: only what the options say.
    assert settings(first)["ProtectHome"] == ["yes"]


def test_exec_start_is_an_absolute_argv_without_a_shell() -> None:
    text = render_unit(options(OUTSIDE_HOME))
    argv = exec_argv(text)
    assert argv == [str(OUTSIDE_HOME.launch), "--profile", "uvicorn-1-async"]
    assert Path(argv[0]).is_absolute()
    assert not any(word in ("sh", "bash", "-c", "/bin/sh") for word in argv)
    unit = settings(text)
    assert unit["Type"] == ["notify"] and unit["NotifyAccess"] == ["main"]
    assert unit["KillMode"] == ["mixed"] and unit["Restart"] == ["on-failure"]
    assert unit["WatchdogSec"] == ["30s"]
    assert unit["TimeoutStopSec"] == ["45"] and unit["TimeoutStartSec"] == ["180"]
    assert "--profiles-file" not in argv


def test_user_file_profile_adds_every_profiles_file_in_order(tmp_path: Path) -> None:
    base, mine = tmp_path / "a b%.toml", tmp_path / "mine.toml"
    text = render_unit(options(OUTSIDE_HOME, profile=builtin(name="mine"), profiles_files=(base, mine)))
    argv = exec_argv(text)
    assert argv[1:5] == ["--profiles-file", str(base), "--profiles-file", str(mine)]
    assert argv[5:] == ["--profile", "mine"]


def test_fields_the_name_does_not_give_become_options() -> None:
    measured = builtin("gunicorn-3-offload", model="none", timeout=90.5, port=8123)
    text = render_unit(options(OUTSIDE_HOME, profile=measured, catalog_profile=builtin("gunicorn-3-offload")))
    assert exec_argv(text)[1:] == [
        "--profile",
        "gunicorn-3-offload",
        "--port",
        "8123",
        "--timeout",
        "90.5",
        "--model",
        "none",
    ]
    assert settings(text)["TimeoutStopSec"] == ["106"]  # ceil(90.5 + 5 + 10)


@pytest.mark.parametrize(
    ("arg", "written"),
    [
        ("plain-word", "plain-word"),
        ("/opt/my venv/bin/launch", '"/opt/my venv/bin/launch"'),
        ("50%", "50%%"),
        ("$HOME", "$$HOME"),
        ('say "hi"', '"say \\"hi\\""'),
        ("back\\slash", '"back\\\\slash"'),
        ("a;b", '"a;b"'),
        ("", '""'),
    ],
)
def test_arguments_are_quoted_per_systemd_syntax(arg: str, written: str) -> None:
    assert quote_arg(arg) == written
    assert [w.replace("%%", "%").replace("$$", "$") for w in shlex.split(written)] == [arg]


def test_env_values_and_paths_are_escaped(tmp_path: Path) -> None:
    text = render_unit(
        options(
            OUTSIDE_HOME,
            env=("GREETING=hello world", "RATE=50%", 'QUOTE=a"b'),
            venv=Path("/opt/v env"),
            workdir=Path("/srv/x%y"),
        )
    )
    env = settings(text)["Environment"]
    assert '"GREETING=hello world"' in env and "RATE=50%%" in env and '"QUOTE=a\\"b"' in env
    assert '"VIRTUAL_ENV=/opt/v env"' in env
    assert "LAUNCH_CACHE_DIR=%C/launch" in env and "HF_HOME=%C/launch/hf" in env
    assert settings(text)["WorkingDirectory"] == ["/srv/x%%y"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"launch_path": Path("bin/launch")}, "launch_path = 'bin/launch': expected an absolute path"),
        ({"launch_path": "/usr/bin/launch"}, "launch_path = '/usr/bin/launch': expected an absolute path"),
        ({"venv": Path("venv")}, "venv = 'venv'"),
        ({"project": Path("src/launch")}, "project = 'src/launch': expected an absolute path"),
        ({"workdir": Path("/srv/a\nb")}, "workdir = '/srv/a\\nb': control characters"),
        ({"profiles_files": (Path("p.toml"),)}, "profiles_files = 'p.toml'"),
        ({"env": ("NOEQUALS",)}, "env 'NOEQUALS': expected KEY=VALUE"),
        ({"env": ("1BAD=x",)}, "env '1BAD=x': '1BAD' is not a valid variable name"),
        ({"env": ("A-B=x",)}, "env 'A-B=x': 'A-B' is not a valid variable name"),
        ({"env": ("NOTIFY_SOCKET=/x",)}, "env 'NOTIFY_SOCKET=/x': NOTIFY_SOCKET is set by systemd"),
        ({"env": ("A=1\n2",)}, "env 'A=1\\n2': control characters"),
        ({"env": ("A=1", "A=2")}, "env 'A=2': A is given more than once"),
        ({"env": "A=1"}, "env = 'A=1': expected a list"),
        ({"watchdog_seconds": -1}, "watchdog_seconds = -1: expected 0 to 3600 seconds"),
        ({"watchdog_seconds": 0.5}, "watchdog_seconds = 0.5: expected 0 (off) or at least 1 second"),
        ({"watchdog_seconds": float("nan")}, "watchdog_seconds = nan: expected a number of seconds"),
        ({"ready_seconds": -3.0}, "ready_seconds = -3.0: expected 0 to 86400 seconds"),
        ({"gpu": "yes"}, "gpu = 'yes': expected true or false"),
        ({"catalog_profile": builtin("uvicorn-3-sync")}, "catalog_profile = 'uvicorn-3-sync'"),
        ({"profile": builtin(model="/m\nx")}, "model = '/m\\nx': control characters"),
    ],
)
def test_unit_options_reject_bad_values_naming_them(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        options(OUTSIDE_HOME, **changes)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_timeouts() -> None:
    assert start_timeout_seconds(None) == 180
    assert start_timeout_seconds(0.0) == 30
    assert start_timeout_seconds(4.2) == 30
    assert start_timeout_seconds(20.0) == 70
    assert start_timeout_seconds(20.01) == 71  # rounded up
    assert stop_timeout_seconds(builtin()) == 45
    assert stop_timeout_seconds(builtin(timeout=120)) == 135
    assert settings(render_unit(options(OUTSIDE_HOME, ready_seconds=20.0)))["TimeoutStartSec"] == ["70"]


@pytest.mark.parametrize("name", ["ray-1-sync", "ray-split-3-offload"])
def test_a_ray_unit_gives_serve_and_ray_time_to_stop_and_a_writable_home(name: str) -> None:
    profile = builtin(name)
    same_timeout = builtin("uvicorn-1-sync", timeout=profile.timeout)
    # Serve's controller, proxy and Ray's own processes stop after the replicas' drain: more than a server's stop.
    assert stop_timeout_seconds(profile) > stop_timeout_seconds(same_timeout)
    assert stop_timeout_seconds(profile) >= profile.stop_seconds > profile.timeout
    system = settings(render_unit(options(OUTSIDE_HOME, profile=profile)))
    assert system["TimeoutStopSec"] == [str(stop_timeout_seconds(profile))]
    # Ray writes ~/.ray/auth_token; a dynamic user's home is / (read-only under ProtectSystem=strict).
    assert "HOME=%C/launch" in system["Environment"] and system["ProtectSystem"] == ["strict"]
    # The loopback-only network stays: the launcher starts Ray on 127.0.0.1.
    assert system["IPAddressAllow"] == ["localhost"]
    user = settings(render_unit(options(OUTSIDE_HOME, profile=profile, user=True)))
    assert not any(e.startswith("HOME=") for e in user["Environment"])  # a user's own home is writable
    assert not any(e.startswith("HOME=") for e in settings(render_unit(options(OUTSIDE_HOME)))["Environment"])


def test_watchdog_option() -> None:
    assert settings(render_unit(options(OUTSIDE_HOME, watchdog_seconds=90)))["WatchdogSec"] == ["90s"]
    off = render_unit(options(OUTSIDE_HOME, watchdog_seconds=0))
    assert "WatchdogSec" not in settings(off) and "Watchdog off" in off


@PLACEMENTS
def test_system_unit_sandbox(at: Placement) -> None:
    unit = settings(render_unit(options(at)))
    for key, value in {
        "DynamicUser": "yes",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": at.protect_home,
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectKernelLogs": "yes",
        "ProtectControlGroups": "yes",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        "CacheDirectory": "launch",
        "CapabilityBoundingSet": "",
        "UMask": "0077",
        "IPAddressDeny": "any",
    }.items():
        assert unit[key] == [value], key
    assert "MemoryDenyWriteExecute" not in unit  # oneDNN's JIT needs it off (see the unit's comment)
    assert unit["WantedBy"] == ["multi-user.target"]


@PLACEMENTS
def test_gpu_unit_opens_nvidia_devices_only(at: Placement) -> None:
    unit = settings(render_unit(options(at, gpu=True)))
    assert unit["ProtectHome"] == [at.protect_home]
    assert "PrivateDevices" not in unit
    assert unit["DevicePolicy"] == ["closed"] and unit["DeviceAllow"] == ["char-nvidia* rw"]
    assert "MemoryDenyWriteExecute" not in unit


@PLACEMENTS
def test_user_unit_uses_only_what_a_user_manager_supports(at: Placement) -> None:
    unit = settings(render_unit(options(at, user=True, gpu=True)))
    for key in (
        "DynamicUser",
        "ProtectSystem",
        "ProtectHome",
        "PrivateTmp",
        "PrivateDevices",
        "ProtectKernelTunables",
        "ProtectControlGroups",
        "ProtectProc",
        "CapabilityBoundingSet",
        "PrivateUsers",
        "IPAddressDeny",
        "DeviceAllow",
    ):
        assert key not in unit, key
    assert unit["WantedBy"] == ["default.target"]
    assert unit["NoNewPrivileges"] == ["yes"] and unit["SystemCallFilter"] == ["@system-service", "~@privileged"]
    assert unit["CacheDirectory"] == ["launch"]


@pytest.mark.parametrize(
    "changes",
    [
        {"launch_path": Path("/home/ann/bin/launch")},
        {"interpreter": Path("/root/.pyenv/versions/3.11.7/bin/python3.11")},
        {"venv": Path("/home/ann/venv")},
        {"project": Path("/home/ann/src/launch")},
        {"workdir": Path("/root/service")},
        {"profiles_files": (Path("/etc/launch.toml"), Path("/home/ann/launch.toml"))},
        {"profile": builtin(model="/run/user/1000/models/tiny")},
        {"app": AppSpec(target="shop:app", app_dir="/home/ann/shop")},
    ],
    ids=["launch", "interpreter", "venv", "project", "workdir", "profiles-file", "model", "app-dir"],
)
def test_any_path_the_service_reads_under_a_home_tree_makes_homes_read_only(changes: dict[str, Any]) -> None:
    # Everything else outside any home: this one path alone decides.
    assert settings(render_unit(options(OUTSIDE_HOME)))["ProtectHome"] == ["yes"]
    home = render_unit(options(OUTSIDE_HOME, **changes))
    assert settings(home)["ProtectHome"] == ["read-only"]
    assert "read-only, not yes" in home
    # A user unit has no ProtectHome= at all, wherever things are.
    assert "ProtectHome" not in settings(render_unit(options(OUTSIDE_HOME, user=True, **changes)))


@pytest.mark.parametrize(
    "path", ["/homework/launch", "/rooted/launch", "/opt/home/launch", "/srv/root/launch", "/run/users/launch"]
)
def test_paths_that_only_look_like_homes_keep_homes_hidden(path: str) -> None:
    unit = settings(render_unit(options(OUTSIDE_HOME, venv=Path(path), launch_path=Path(path) / "bin" / "launch")))
    assert unit["ProtectHome"] == ["yes"]


def test_addresses_shape_the_network() -> None:
    wildcard = settings(render_unit(options(OUTSIDE_HOME, profile=builtin(host="0.0.0.0"))))
    assert "IPAddressDeny" not in wildcard and wildcard["After"] == ["network.target"]
    fixed = settings(render_unit(options(OUTSIDE_HOME, profile=builtin(host="10.1.2.3"))))
    assert fixed["Wants"] == ["network-online.target"] and fixed["After"] == ["network-online.target"]


# --- systemd's own checks -----------------------------------------------------


def analyze(*args: str, user: bool, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    assert SYSTEMD_ANALYZE is not None
    env = dict(os.environ, SYSTEMD_COLORS="0", SYSTEMD_PAGER="")
    if user:
        # Offline, a user manager's paths need a runtime folder.
        runtime = tmp_path / "runtime"
        runtime.mkdir(mode=0o700, exist_ok=True)
        env["XDG_RUNTIME_DIR"] = str(runtime)
    argv = [SYSTEMD_ANALYZE, *args[:1], *(["--user"] if user else []), *args[1:]]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)


def write_unit(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "launch-test.service"
    path.write_text(text)
    return path


@pytest.mark.e2e
@needs_analyze
@pytest.mark.parametrize("user", [False, True], ids=["system", "user"])
@pytest.mark.parametrize("gpu", [False, True], ids=["cpu", "gpu"])
@pytest.mark.parametrize("at", [OUTSIDE_HOME, UNDER_HOME], ids=["outside-home", "under-home"])
def test_systemd_analyze_verify_accepts_the_unit(
    tmp_path: Path, outside_home: Path, user: bool, gpu: bool, at: Placement
) -> None:
    # verify wants ExecStart's binary to exist: a stand-in, in a venv under /tmp. Where Python is, the
    # placement says (verify does not look at it).
    venv = fake_venv(outside_home, shebang=Path("/bin/sh"))
    profiles = outside_home / "my profiles%.toml"
    text = render_unit(
        options(
            at,
            launch_path=venv / "bin" / "launch",
            user=user,
            gpu=gpu,
            profile=builtin("gunicorn-3-offload", name="my-gpu", model="none"),
            catalog_profile=builtin("gunicorn-3-offload", name="my-gpu"),
            profiles_files=(profiles,),
            workdir=outside_home,
            env=("GREETING=hello world",),
            venv=venv,
            ready_seconds=12.5,
        )
    )
    assert settings(text).get("ProtectHome") == (None if user else [at.protect_home])
    result = analyze("verify", "--man=no", str(write_unit(tmp_path, text)), user=user, tmp_path=tmp_path)
    # verify exits 0 even for unknown keys and unparsable values: it only warns, so nothing may be said.
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


@pytest.mark.e2e
@needs_analyze
def test_systemd_analyze_verify_would_catch_a_bad_line(tmp_path: Path, outside_home: Path) -> None:
    venv = fake_venv(outside_home, shebang=Path("/bin/sh"))
    text = render_unit(options(OUTSIDE_HOME, launch_path=venv / "bin" / "launch")).replace(
        "KillMode=mixed", "KillMode=mixed\nWatchdogSec=soon\nNoSuchKey=1"
    )
    result = analyze("verify", "--man=no", str(write_unit(tmp_path, text)), user=False, tmp_path=tmp_path)
    assert "NoSuchKey" in result.stderr and "soon" in result.stderr


def exposure(tmp_path: Path, text: str, *, user: bool = False) -> float:
    result = analyze("security", "--offline=true", str(write_unit(tmp_path, text)), user=user, tmp_path=tmp_path)
    found = re.search(r"Overall exposure level for launch-test\.service: (\d+\.\d+) (\w+)", result.stdout)
    assert found, result.stdout + result.stderr
    return float(found.group(1))


@pytest.mark.e2e
@needs_analyze
@PLACEMENTS
def test_systemd_analyze_security_rates_the_system_unit_ok(tmp_path: Path, at: Placement) -> None:
    # Offline, security reads the unit only: the placement's paths need not exist.
    score = exposure(tmp_path, render_unit(options(at)))
    gpu = exposure(tmp_path, render_unit(options(at, gpu=True)))
    user = exposure(tmp_path, render_unit(options(at, user=True)), user=True)
    print(
        f"\nsystemd-analyze security --offline=true, ProtectHome={at.protect_home}: "
        f"system {score} (gpu {gpu}), user unit {user}"
    )
    assert score <= MAX_EXPOSURE
    assert gpu <= MAX_EXPOSURE


# --- the notify protocol, for real --------------------------------------------


@dataclass(frozen=True)
class Datagram:
    at: float
    sender: int
    fields: dict[str, str]


class FakeSystemd:
    """The systemd end of $NOTIFY_SOCKET: a bound datagram socket that records each message and its sender pid."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        # As systemd does: the kernel attaches the sender's credentials (NotifyAccess= is judged on the pid).
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.received: list[Datagram] = []

    def receive(self, timeout: float) -> Datagram | None:
        self.sock.settimeout(timeout)
        try:
            data, ancillary, _flags, _addr = self.sock.recvmsg(65536, socket.CMSG_SPACE(12))
        except TimeoutError:
            return None
        sender = -1
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                sender = struct.unpack("iII", payload[:12])[0]
        fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
        message = Datagram(at=time.monotonic(), sender=sender, fields=fields)
        self.received.append(message)
        return message

    def collect(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.receive(left)

    def pings(self, since: float = 0.0) -> list[float]:
        return [m.at for m in self.received if m.fields.get("WATCHDOG") == "1" and m.at >= since]

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def fake_systemd(tmp_path: Path) -> Iterator[FakeSystemd]:
    end = FakeSystemd(tmp_path / "notify.sock")
    yield end
    end.close()


def start_launcher(
    profile: str, notify_path: str, log: Path, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("WATCHDOG_PID",)}
    env.update(NOTIFY_SOCKET=notify_path, WATCHDOG_USEC="1000000", PYTHONUNBUFFERED="1")
    env.update(extra_env or {})
    with log.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "launcher", "--profile", profile, "--model", "none", "--port", "0", "--attribution"],
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def await_ready(end: FakeSystemd, proc: subprocess.Popen[bytes], log: Path) -> tuple[Datagram, int, dict[str, Any]]:
    """The READY=1 datagram, checked the moment it arrives: /health must already answer."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        message = end.receive(0.5)
        if message is None:
            assert proc.poll() is None, f"launcher exited with {proc.returncode}: {log.read_text(errors='replace')}"
            continue
        if message.fields.get("READY") == "1":
            status, health = get_json(f"{message.fields['X_LAUNCH_URL']}/health", timeout=5)
            return message, status, health
    pytest.fail(f"no READY=1 within 180 s: {log.read_text(errors='replace')}")


def stop_launcher(end: FakeSystemd, proc: subprocess.Popen[bytes], log: Path) -> None:
    """SIGTERM to the main process only (KillMode=mixed), then STOPPING=1, exit 0 and an empty group."""
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=120) == 0, log.read_text(errors="replace")
    end.collect(0.3)  # datagrams stay queued after the sender exited
    assert any(m.fields.get("STOPPING") == "1" for m in end.received), [m.fields for m in end.received[-5:]]
    deadline = time.monotonic() + 10
    while group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not group_alive(proc.pid), "processes left in the launcher's group"


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    procs.kill_group(proc.pid, wait=0.0)  # no waiting for the group while its leader is an unreaped zombie
    proc.wait()


@pytest.mark.e2e
def test_notify_ready_watchdog_blocked_loop_and_stop(tmp_path: Path, fake_systemd: FakeSystemd) -> None:
    log = tmp_path / "launch.log"
    proc = start_launcher("uvicorn-1-async", fake_systemd.path, log)
    try:
        ready, status, health = await_ready(fake_systemd, proc, log)
        # READY=1 came only once /health answered, and nothing (no READY, no WATCHDOG) came before it.
        assert status == 200 and health["status"] == "ok"
        assert fake_systemd.received == [ready]
        assert int(ready.fields["MAINPID"]) == proc.pid == ready.sender
        url = ready.fields["X_LAUNCH_URL"]

        # Regular pings while the loop is free: never a gap near the 1 s period.
        fake_systemd.collect(3.0)
        steady = fake_systemd.pings(since=ready.at)
        assert len(steady) >= 4, steady
        assert max(b - a for a, b in itertools.pairwise(steady)) < 0.9

        # An async-mode request blocks the event loop for 4 s: the worker stops pinging, so must the relay.
        answer: dict[str, Any] = {}

        def block() -> None:
            answer["status"], answer["body"] = get_json(f"{url}/test1?seconds=4", timeout=30)
            answer["done"] = time.monotonic()

        blocker = threading.Thread(target=block)
        sent = time.monotonic()
        blocker.start()
        while blocker.is_alive():
            fake_systemd.receive(0.1)
        blocker.join()
        fake_systemd.collect(2.0)
        assert answer["status"] == 200 and answer["body"]["mode"] == "async"
        window = [t for t in fake_systemd.pings(since=sent - 1.0) if t <= answer["done"] + 1.0]
        longest = max(b - a for a, b in itertools.pairwise(window))
        print(f"\nlongest gap between WATCHDOG=1 while the loop was blocked 4 s: {longest:.2f} s")
        assert longest >= 2.5, [round(t - sent, 2) for t in window]
        # ...and they resume once the loop is free again.
        after = fake_systemd.pings(since=answer["done"])
        assert len(after) >= 3, after
        assert max(b - a for a, b in itertools.pairwise(after)) < 0.9

        # Every datagram came from the main process: NotifyAccess=main accepts them all.
        assert {m.sender for m in fake_systemd.received} == {proc.pid}
        stop_launcher(fake_systemd, proc, log)
    finally:
        kill_group(proc)


@pytest.mark.e2e
@pytest.mark.parametrize(
    "profile", ["gunicorn-3-sync", "uvicorn-3-sync", "hypercorn-3-sync", "split-gunicorn-3-offload"]
)
def test_only_the_main_process_notifies(tmp_path: Path, fake_systemd: FakeSystemd, profile: str) -> None:
    log = tmp_path / "launch.log"
    proc = start_launcher(profile, fake_systemd.path, log)
    try:
        ready, status, health = await_ready(fake_systemd, proc, log)
        workers = {int(p) for p in ready.fields["X_LAUNCH_WORKERS"].split(",")}
        assert status == 200 and health["pid"] in workers and proc.pid not in workers
        fake_systemd.collect(1.5)
        assert len(fake_systemd.pings()) >= 2
        stop_launcher(fake_systemd, proc, log)
        assert {m.sender for m in fake_systemd.received} == {proc.pid}
    finally:
        kill_group(proc)


def unit_environment(text: str, cache_root: Path) -> dict[str, str]:
    """The unit's ``Environment=`` assignments, with ``%C`` (the cache root) resolved to ``cache_root``."""
    pairs = (value.partition("=") for value in settings(text).get("Environment", []))
    return {key: value.replace("%C", str(cache_root)) for key, _, value in pairs}


@pytest.mark.e2e
def test_ray_under_its_units_environment_serves_on_loopback_and_stops_in_time(
    tmp_path: Path, fake_systemd: FakeSystemd
) -> None:
    pytest.importorskip("ray.serve", reason="the ray extra: pip install -e '.[ray]'")
    import psutil

    from tests.launcher.raysession import LOOPBACK, listening, session_processes

    profile = builtin("ray-1-sync")
    # Only its Environment= is used here, which does not depend on the placement.
    text = render_unit(options(OUTSIDE_HOME, profile=profile))
    env = unit_environment(text, tmp_path / "cache")
    home = Path(env["HOME"])
    home.mkdir(parents=True)  # systemd creates CacheDirectory= before the start
    log = tmp_path / "launch.log"
    proc = start_launcher(profile.name, fake_systemd.path, log, env)
    try:
        ready, status, health = await_ready(fake_systemd, proc, log)
        assert status == 200 and health["pid"] in {int(p) for p in ready.fields["X_LAUNCH_WORKERS"].split(",")}
        # Ray kept its session token where the unit points HOME (the only writable place under the sandbox).
        assert (home / ".ray" / "auth_token").is_file()
        session = session_processes(proc.pid)
        sockets = listening(session)
        assert {"gcs_server", "raylet"} <= {name for _, name in sockets}, sockets
        # Ray's own servers on loopback, which IPAddressAllow=localhost lets through; Serve's replicas also
        # open an inter-deployment gRPC port on every interface (hard-coded), which the unit's filter drops.
        assert {ip for ip, name in sockets if not name.startswith("ray::ServeReplica")} <= LOOPBACK, sockets
        started = time.monotonic()
        stop_launcher(fake_systemd, proc, log)
        took = time.monotonic() - started
        assert took < stop_timeout_seconds(profile), f"stop took {took:.1f} s, past TimeoutStopSec"
        left = [p.pid for p in session if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert left == [], left
        assert {m.sender for m in fake_systemd.received} == {proc.pid}
    finally:
        kill_group(proc)


# --- the command ------------------------------------------------------------


def invoke(cli: click.Group, *args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def assert_one_line_error(result: Result, *fragments: str) -> str:
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("launch: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


CURRENT = f'"schema_version": {SCHEMA_VERSION}'


def report(profile: Profile, **recommendation: Any) -> dict[str, Any]:
    rec = {"profile": profile.to_dict(), "source": None, "ready_seconds": 6.3, "why": "fastest", "rejected": {}}
    rec.update(recommendation)
    return {
        "schema": "launch.probe",
        "schema_version": SCHEMA_VERSION,
        "complete": True,
        "created": "2026-01-01T00:00:00+00:00",
        "machine": {},
        "options": {},
        "profiles": [],
        "recommendation": rec,
    }


def test_profile_to_stdout(cli: click.Group) -> None:
    result = invoke(cli, "systemd", "--profile", "hypercorn-3-offload")
    assert result.exit_code == 0, result.output
    assert exec_argv(result.stdout)[1:] == ["--profile", "hypercorn-3-offload"]
    assert Path(exec_argv(result.stdout)[0]).is_absolute()


def test_profile_from_a_user_file(cli: click.Group, tmp_path: Path) -> None:
    base = tmp_path.resolve() / "base.toml"
    base.write_text('[profiles.team]\nextends = "gunicorn-3-offload"\ntimeout = 60\n')
    mine = tmp_path.resolve() / "mine.toml"
    mine.write_text('[profiles.mine]\nextends = "team"\nlimiter = 2\n')
    result = invoke(cli, "--profiles-file", str(base), "--profiles-file", str(mine), "systemd", "--profile", "mine")
    assert result.exit_code == 0, result.output
    argv = exec_argv(result.stdout)
    assert argv[1:] == ["--profiles-file", str(base), "--profiles-file", str(mine), "--profile", "mine"]
    assert settings(result.stdout)["TimeoutStopSec"] == ["75"]


def test_from_report(cli: click.Group, tmp_path: Path) -> None:
    profiles = tmp_path.resolve() / "p.toml"
    profiles.write_text('[profiles.mine]\nextends = "uvicorn-3-offload"\n')
    measured = builtin("uvicorn-3-offload", name="mine", model="none")
    path = tmp_path / "probe.json"
    path.write_text(json.dumps(report(measured, source=str(profiles), ready_seconds=20.0)))
    out = tmp_path / "launch-mine.service"
    result = invoke(
        cli, "systemd", "--from-report", str(path), "--output", str(out), "--venv", str(LAUNCH.parent.parent)
    )
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert exec_argv(text) == [str(LAUNCH), "--profiles-file", str(profiles), "--profile", "mine", "--model", "none"]
    assert settings(text)["TimeoutStartSec"] == ["70"]
    assert "Chosen by `launch probe`: fastest" in text


@pytest.mark.e2e
def test_from_a_report_the_probe_itself_wrote(cli: click.Group, tmp_path: Path) -> None:
    from launcher.probe.model import ProbeRun, Recommendation, dump_run

    run = ProbeRun(
        created="2026-01-01T00:00:00+00:00",
        machine={},
        options={},
        profiles=(),
        recommendation=Recommendation(
            profile=builtin("gunicorn-3-offload"), source=None, ready_seconds=7.5, why="it won"
        ),
    )
    path = tmp_path / "probe.json"
    path.write_text(dump_run(run))
    result = invoke(cli, "systemd", "--from-report", str(path))
    assert result.exit_code == 0, result.output
    assert exec_argv(result.stdout)[1:] == ["--profile", "gunicorn-3-offload"]
    assert settings(result.stdout)["TimeoutStartSec"] == ["33"]  # ceil(3 x 7.5 + 10)


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        (lambda ok: ok[: ok.index('"recommendation"')], ["not valid JSON: it ends at byte", "(truncated?"]),
        (lambda ok: ok[: len(ok) // 2], ["not valid JSON", "byte"]),
        (lambda ok: "", ["the file is empty"]),
        (lambda ok: ok + "}", ["not valid JSON at byte", "Extra data"]),
        (lambda ok: json.dumps({"name": "something else"}), ["not a launch probe result"]),
        (lambda ok: json.dumps([1, 2]), ["not a launch probe result"]),
        (lambda ok: ok.replace(CURRENT, f'"schema_version": {SCHEMA_VERSION + 1}'), ["is newer", "upgrade"]),
        (lambda ok: ok.replace(CURRENT, f'"schema_version": "{SCHEMA_VERSION}"'), ["schema_version is missing or not"]),
        (lambda ok: ok.replace('"why": "fastest"', '"why": 3'), ["recommendation.why: expected text, got a number"]),
        (lambda ok: json.dumps({**json.loads(ok), "recommendation": None}), ["recommended no profile"]),
        (lambda ok: ok.replace('"workers": 3', '"workers": 0'), ["recommendation.profile: workers = 0"]),
        (lambda ok: ok.replace('"workers": 3', '"wrkers": 3'), ["unknown field 'wrkers'"]),
        (lambda ok: ok.replace('"ready_seconds": 6.3', '"ready_seconds": -1'), ["ready_seconds = -1"]),
        (lambda ok: ok.replace('"source": null', '"source": "rel.toml"'), ["source = 'rel.toml'"]),
    ],
)
def test_from_report_rejects_bad_files_in_one_line(
    cli: click.Group, tmp_path: Path, content: Any, fragments: list[str]
) -> None:
    good = json.dumps(report(builtin("uvicorn-3-offload")))
    path = tmp_path / "probe.json"
    path.write_text(content(good))
    message = assert_one_line_error(invoke(cli, "systemd", "--from-report", str(path)), *fragments)
    assert str(path) in message


def test_from_report_whose_source_is_gone(cli: click.Group, tmp_path: Path) -> None:
    path = tmp_path / "probe.json"
    gone = tmp_path / "gone.toml"
    path.write_text(json.dumps(report(builtin("uvicorn-3-offload", name="mine"), source=str(gone))))
    assert_one_line_error(invoke(cli, "systemd", "--from-report", str(path)), str(gone), "cannot read")


def test_missing_report_file(cli: click.Group, tmp_path: Path) -> None:
    assert_one_line_error(invoke(cli, "systemd", "--from-report", str(tmp_path / "nope.json")), "cannot read")


def test_output_refuses_to_overwrite_without_force(cli: click.Group, tmp_path: Path) -> None:
    out = tmp_path / "launch.service"
    out.write_text("keep me\n")
    result = invoke(cli, "systemd", "--profile", "uvicorn-1-sync", "--output", str(out))
    assert_one_line_error(result, str(out), "--force")
    assert out.read_text() == "keep me\n"
    result = invoke(cli, "systemd", "--profile", "uvicorn-1-sync", "--output", str(out), "--force")
    assert result.exit_code == 0, result.output
    assert exec_argv(out.read_text())[1:] == ["--profile", "uvicorn-1-sync"]
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        ([], ["exactly one of --profile NAME and --from-report FILE"]),
        (["--profile", "uvicorn-1-sync", "--from-report", "x.json"], ["exactly one of"]),
        (["--profile", "uvicorn-1-snyc"], ["unknown profile 'uvicorn-1-snyc'", "did you mean"]),
        (["--profile", "uvicorn-1-sync", "--env", "1X=2"], ["'1X' is not a valid variable name"]),
        (["--profile", "uvicorn-1-sync", "--env", "WATCHDOG_USEC=5"], ["WATCHDOG_USEC is set by systemd"]),
        (["--profile", "uvicorn-1-sync", "--watchdog", "-5"], ["watchdog_seconds = -5.0"]),
        (["--profile", "uvicorn-1-sync", "--venv", "/"], ["--venv /: no executable bin/launch"]),
    ],
)
def test_usage_errors(cli: click.Group, args: list[str], fragments: list[str]) -> None:
    assert_one_line_error(invoke(cli, "systemd", *args), *fragments)


def test_options_reach_the_unit(cli: click.Group, tmp_path: Path) -> None:
    result = invoke(
        cli,
        "systemd",
        "--profile",
        "gunicorn-1-sync",
        "--user",
        "--gpu",
        "--watchdog",
        "12",
        "--env",
        "CUDA_VISIBLE_DEVICES=0",
        "--workdir",
        str(tmp_path),
    )
    assert result.exit_code == 0, result.output
    unit = settings(result.stdout)
    assert unit["WatchdogSec"] == ["12s"] and unit["WantedBy"] == ["default.target"]
    assert "CUDA_VISIBLE_DEVICES=0" in unit["Environment"] and unit["WorkingDirectory"] == [str(tmp_path)]


def editable_record(venv: Path, url: str, *, editable: bool = True) -> None:
    """What ``pip install -e`` leaves in the venv: the PEP 610 record pointing at the checkout."""
    folder = venv / "lib" / "python3.11" / "site-packages" / "launch-0.1.0.dist-info"
    folder.mkdir(parents=True)
    (folder / "direct_url.json").write_text(json.dumps({"dir_info": {"editable": editable}, "url": url}))


@PLACEMENTS
def test_the_command_hides_homes_unless_the_python_it_runs_lives_there(
    cli: click.Group, outside_home: Path, monkeypatch: pytest.MonkeyPatch, at: Placement
) -> None:
    venv = fake_venv(outside_home, shebang=at.interpreter)
    # The interpreter as the command finds it (the shebang, symlinks followed), fixed: /home or /root may
    # themselves be links elsewhere on some machines. script_interpreter's own test is below.
    monkeypatch.setattr(systemd_cli, "script_interpreter", lambda launch: at.interpreter)
    result = invoke(cli, "systemd", "--profile", "uvicorn-1-sync", "--venv", str(venv))
    assert result.exit_code == 0, result.output
    assert exec_argv(result.stdout)[0] == str(venv / "bin" / "launch")
    assert settings(result.stdout)["ProtectHome"] == [at.protect_home]


@pytest.mark.parametrize(
    ("checkout", "protect_home"), [("/home/ann/src/launch", "read-only"), (None, "yes")], ids=["home", "outside"]
)
def test_the_command_hides_homes_unless_an_editable_checkout_lives_there(
    cli: click.Group, outside_home: Path, monkeypatch: pytest.MonkeyPatch, checkout: str | None, protect_home: str
) -> None:
    # launch and its Python outside any home, the code it runs (pip install -e) where ``checkout`` says.
    code = Path(checkout) if checkout else outside_home / "src" / "launch"
    venv = fake_venv(outside_home, shebang=OUTSIDE_HOME.interpreter)
    editable_record(venv, code.as_uri())
    monkeypatch.setattr(systemd_cli, "script_interpreter", lambda launch: OUTSIDE_HOME.interpreter)
    result = invoke(cli, "systemd", "--profile", "uvicorn-1-sync", "--venv", str(venv))
    assert result.exit_code == 0, result.output
    assert settings(result.stdout)["ProtectHome"] == [protect_home]


def test_editable_checkout(outside_home: Path) -> None:
    venv = fake_venv(outside_home, shebang=OUTSIDE_HOME.interpreter)
    launch = venv / "bin" / "launch"
    assert editable_checkout(launch) is None  # nothing recorded: the code is in the venv
    editable_record(venv, "file:///home/ann/my%20launch")
    assert editable_checkout(launch) == Path("/home/ann/my launch")
    # A link to the script (~/.local/bin/launch, say) stands for the venv it points into.
    link = outside_home / "launch"
    link.symlink_to(launch)
    assert editable_checkout(link) == Path("/home/ann/my launch")
    for other in ("not-editable", "archive", "broken"):
        shutil.rmtree(venv / "lib")
        if other == "not-editable":
            editable_record(venv, "file:///home/ann/launch", editable=False)
        elif other == "archive":
            editable_record(venv, "https://example.org/launch-0.1.0.tar.gz")
        else:
            editable_record(venv, "file:///x")
            next(venv.glob("lib/*/site-packages/*/direct_url.json")).write_text("{not json")
        assert editable_checkout(launch) is None, other


def test_script_interpreter_follows_links(outside_home: Path) -> None:
    real = outside_home / "python3.11"
    real.write_text("")
    link = outside_home / "python3"
    link.symlink_to(real)
    venv = fake_venv(outside_home, shebang=link)
    assert systemd_cli.script_interpreter(venv / "bin" / "launch") == real
    assert systemd_cli.script_interpreter(real) is None  # not a #! script


@pytest.mark.e2e
@needs_analyze
def test_the_split_profiles_unit_verifies_and_is_as_confined(tmp_path: Path, outside_home: Path) -> None:
    # One unit: the launcher supervises the demo, the API group and Caddy; the sandbox is the single-process one's.
    venv = fake_venv(outside_home, shebang=Path("/bin/sh"))
    split = builtin("split-gunicorn-3-offload")
    text = render_unit(options(OUTSIDE_HOME, launch_path=venv / "bin" / "launch", profile=split, venv=venv))
    assert "Split topology: the launcher supervises all three groups" in text
    assert settings(text)["TimeoutStopSec"] == [str(stop_timeout_seconds(split))]
    result = analyze("verify", "--man=no", str(write_unit(tmp_path, text)), user=False, tmp_path=tmp_path)
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr
    score = exposure(tmp_path, text)
    single = exposure(tmp_path, render_unit(options(OUTSIDE_HOME, launch_path=venv / "bin" / "launch", venv=venv)))
    print(f"\nsystemd-analyze security, split-gunicorn-3-offload: {score} (single-process unit: {single})")
    assert score <= 2.0 and score == single
