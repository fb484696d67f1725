"""The Ray reaper with a stand-in head (no Ray needed): it reports, catches orphans as a subreaper, leaves nothing.

The stand-in plays ``ray start --head --block``: it writes the address file
Ray writes, and starts a daemon the way a process escapes its parent (double
fork, new session, the marker dropped from its environment), which only a
subreaper still has in its tree. The real head is tested in test_ray.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from launcher.backends.ray import LOOPBACK_IP, OBJECT_STORE_BYTES, head_command
from launcher.backends.ray_reaper import (
    ADDRESS_FILE,
    HEAD_LOG,
    HEAD_STOP_SECONDS,
    KILL_SECONDS,
    OWNER_ENV,
    SWEEP_SECONDS,
    head_cause,
    read_address,
)
from launcher.child import DEFAULT_START_TIMEOUT
from profiles.model import RAY_HEAD_START_SECONDS, RAY_REAPER_WAIT_SECONDS

FAKE_HEAD = r"""
import os, signal, sys, time
temp, mode = sys.argv[1], sys.argv[2]
if mode == "fail":
    print("Traceback (most recent call last):")
    print("RuntimeError: the stand-in head failed", flush=True)
    sys.exit(1)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.environ.pop("LAUNCH_RAY_OWNER", None)
        os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(600)", "stand-in-daemon"])
    os._exit(0)
if mode == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
with open(os.path.join(temp, "ray_current_cluster"), "w") as f:
    f.write("127.0.0.1:6379")
if mode == "exits":
    time.sleep(1)
    sys.exit(3)
while True:
    time.sleep(1)
"""
MARKER = f"{os.getpid()}-test"


# --- no process -----------------------------------------------------------------------------


def test_the_head_is_started_as_ray_init_would_start_a_local_instance(tmp_path: Path) -> None:
    argv = head_command(tmp_path, 2)
    assert argv[:5] == [sys.executable, "-m", "ray.scripts.scripts", "start", "--head"]
    assert {
        "--block",
        "--port=0",
        f"--node-ip-address={LOOPBACK_IP}",
        "--num-cpus=2",
        "--include-dashboard=false",
        f"--object-store-memory={OBJECT_STORE_BYTES}",
        "--disable-usage-stats",
        f"--temp-dir={tmp_path}",
    } <= set(argv)


def test_the_reapers_stop_fits_in_the_launchers_wait_and_the_heads_start_in_the_probes() -> None:
    assert HEAD_STOP_SECONDS + KILL_SECONDS + SWEEP_SECONDS + 1 < RAY_REAPER_WAIT_SECONDS
    assert RAY_HEAD_START_SECONDS <= DEFAULT_START_TIMEOUT / 2


def test_the_address_is_taken_only_once_written_whole(tmp_path: Path) -> None:
    assert read_address(tmp_path) is None
    (tmp_path / ADDRESS_FILE).write_text("")
    assert read_address(tmp_path) is None
    (tmp_path / ADDRESS_FILE).write_text("127.0.0.1:")
    assert read_address(tmp_path) is None
    (tmp_path / ADDRESS_FILE).write_text("127.0.0.1:6379")
    assert read_address(tmp_path) == "127.0.0.1:6379"


def test_the_heads_reason_is_its_last_exception_or_error_line(tmp_path: Path) -> None:
    log = tmp_path / HEAD_LOG
    assert head_cause(tmp_path) == "(no output)"
    log.write_text(
        "2026-01-01 00:00:00,000\tINFO scripts.py:1 -- \x1b[37mLocal node IP\x1b[39m: 127.0.0.1\n"
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1, in <module>\n'
        "RuntimeError: Timed out waiting for file /tmp/x/gcs_server_port\n"
    )
    assert head_cause(tmp_path) == "RuntimeError: Timed out waiting for file /tmp/x/gcs_server_port"
    log.write_text("2026-01-01 00:00:00,000\tERROR scripts.py:1 -- \x1b[31mPort 1 is in use\x1b[39m\nbye\n")
    assert head_cause(tmp_path) == "Port 1 is in use"
    log.write_text("just this\n\n")
    assert head_cause(tmp_path) == "just this"


# --- with processes -------------------------------------------------------------------------


def _start(tmp_path: Path, mode: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "launcher.backends.ray_reaper",
            MARKER,
            str(tmp_path),
            "--",
            sys.executable,
            "-c",
            FAKE_HEAD,
            str(tmp_path),
            mode,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, OWNER_ENV: MARKER},
        start_new_session=True,
    )


@pytest.fixture
def reapers() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Reapers a test starts: each one and its tree killed afterwards, whatever the test did."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for reaper in started:
        try:
            tree = psutil.Process(reaper.pid).children(recursive=True)
        except psutil.Error:
            tree = []
        for proc in tree:
            try:
                proc.kill()
            except psutil.Error:
                pass
        reaper.kill()
        reaper.wait()


def _daemon_under(reaper: subprocess.Popen[bytes], seconds: float = 10) -> psutil.Process:
    """The stand-in's daemon, once it is the reaper's child (its parents gone: orphaned to the subreaper)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for child in psutil.Process(reaper.pid).children():
            try:
                if "stand-in-daemon" in child.cmdline():
                    return child
            except psutil.Error:
                continue
        time.sleep(0.05)
    raise AssertionError("the daemon was not reparented to the reaper")


@pytest.mark.e2e
def test_the_reaper_reports_the_head_and_catches_its_orphans_when_the_launcher_goes(
    tmp_path: Path, reapers: list[subprocess.Popen[bytes]]
) -> None:
    reaper = _start(tmp_path, "serve")
    reapers.append(reaper)
    assert reaper.stdout is not None and reaper.stdin is not None
    assert reaper.stdout.readline() == b"ready 127.0.0.1:6379\n"
    daemon = _daemon_under(reaper)
    # A daemon in a session of its own, without the marker: neither a process group nor the marker finds it.
    assert daemon.environ().get(OWNER_ENV) is None and os.getsid(daemon.pid) != os.getsid(reaper.pid)
    head = next(p for p in psutil.Process(reaper.pid).children() if "stand-in-daemon" not in p.cmdline())
    reaper.stdin.close()  # the launcher exits
    assert reaper.wait(timeout=RAY_REAPER_WAIT_SECONDS) == 0
    assert not daemon.is_running() and not head.is_running()


@pytest.mark.e2e
def test_the_reaper_sweeps_a_marked_process_outside_its_tree(
    tmp_path: Path, reapers: list[subprocess.Popen[bytes]]
) -> None:
    outsider = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)"], env={**os.environ, OWNER_ENV: MARKER}
    )
    try:
        reaper = _start(tmp_path, "serve")
        reapers.append(reaper)
        assert reaper.stdout is not None and reaper.stdin is not None
        assert reaper.stdout.readline().startswith(b"ready ")
        reaper.stdin.close()
        assert reaper.wait(timeout=RAY_REAPER_WAIT_SECONDS) == 0
        assert outsider.wait(timeout=1) == -signal.SIGKILL
    finally:
        outsider.kill()
        outsider.wait()


@pytest.mark.e2e
def test_a_head_that_fails_is_reported_and_leaves_nothing(
    tmp_path: Path, reapers: list[subprocess.Popen[bytes]]
) -> None:
    reaper = _start(tmp_path, "fail")
    reapers.append(reaper)
    assert reaper.stdout is not None
    assert reaper.stdout.readline() == b"failed exit status 1\n"
    assert reaper.wait(timeout=RAY_REAPER_WAIT_SECONDS) == 1
    assert head_cause(tmp_path) == "RuntimeError: the stand-in head failed"


@pytest.mark.e2e
def test_a_head_that_exits_once_up_is_reported_and_its_orphans_killed(
    tmp_path: Path, reapers: list[subprocess.Popen[bytes]]
) -> None:
    reaper = _start(tmp_path, "exits")
    reapers.append(reaper)
    assert reaper.stdout is not None
    assert reaper.stdout.readline().startswith(b"ready ")
    daemon = _daemon_under(reaper)
    assert reaper.stdout.readline() == b"exited exit status 3\n"
    assert reaper.wait(timeout=RAY_REAPER_WAIT_SECONDS) == 0
    assert not daemon.is_running()


@pytest.mark.e2e
def test_sigterm_ends_the_reaper_and_a_head_deaf_to_it_is_killed_after_its_grace(
    tmp_path: Path, reapers: list[subprocess.Popen[bytes]]
) -> None:
    reaper = _start(tmp_path, "stubborn")
    reapers.append(reaper)
    assert reaper.stdout is not None
    assert reaper.stdout.readline().startswith(b"ready ")
    tree = psutil.Process(reaper.pid).children(recursive=True)
    _daemon_under(reaper)
    started = time.monotonic()
    reaper.send_signal(signal.SIGTERM)  # as systemd or a user would: the reaper cleans up as on EOF
    assert reaper.wait(timeout=RAY_REAPER_WAIT_SECONDS) == 0
    took = time.monotonic() - started
    assert HEAD_STOP_SECONDS - 0.5 < took < HEAD_STOP_SECONDS + KILL_SECONDS + SWEEP_SECONDS + 1
    assert not any(p.is_running() for p in tree)
