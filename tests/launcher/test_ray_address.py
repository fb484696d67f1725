"""``--ray-address``: an address that cannot be a Ray cluster is one line with exit 2 at once, never a hang.

``ray.init`` retries an unreachable GCS for minutes (measured with Ray 2.60: still waiting after 2 min); the
launcher checks the address first (:func:`launcher.backends.ray.check_address`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from launcher.backends.ray import (
    AUTH_ENV,
    AUTH_HINT,
    HEAD_ENV,
    LOOPBACK_ENV,
    check_address,
    check_cluster_cpus,
    connect_reason,
    head_command,
)
from launcher.backends.ray_reaper import OWNER_ENV
from launcher.errors import ConfigError, ExitCode
from tests.conftest import builtin

REPO = Path(__file__).resolve().parents[2]


def _closed_port() -> int:
    """A loopback port that nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_an_address_that_accepts_a_connection_passes() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        check_address(f"127.0.0.1:{port}", timeout=2)
        check_address(f"ray://127.0.0.1:{port}", timeout=2)


def test_rays_own_lookups_are_left_to_ray() -> None:
    check_address("auto")
    check_address("local")


def test_an_address_nothing_listens_on_is_refused_in_one_line() -> None:
    port = _closed_port()
    with pytest.raises(ConfigError, match=rf"no Ray cluster reachable at 127\.0\.0\.1:{port} \(.*refused"):
        check_address(f"127.0.0.1:{port}", timeout=2)


@pytest.mark.parametrize("bad", ["ray://[::1", "host:99999", "host:1/path", "host:1?x=1", ":6379"])
def test_what_is_not_an_address_is_refused(bad: str) -> None:
    with pytest.raises(ConfigError, match="expected HOST:PORT"):
        check_address(bad, timeout=1)


def test_a_cluster_with_no_cpu_for_the_replicas_is_refused_and_any_share_is_enough() -> None:
    profile = builtin("ray-split-3-offload")
    with pytest.raises(ConfigError, match="offer 0 CPUs, and ray-split-3-offload's 4 replicas need some"):
        check_cluster_cpus("h:1", 0.0, profile)
    with pytest.raises(ConfigError, match="offer 0 CPUs"):
        check_cluster_cpus("h:1", None, profile)
    check_cluster_cpus("h:1", 0.5, profile)  # each replica then asks for an eighth: Ray schedules them


def test_rays_connection_failure_is_one_line_and_names_token_authentication() -> None:
    try:
        try:
            raise RuntimeError(
                "Failed to connect to GCS. Last error:\nTraceback ...\nUnauthenticated: InvalidAuthToken"
            )
        except RuntimeError as inner:
            raise ConnectionError("Failed to connect to Ray cluster at 10.0.0.1:6379") from inner
    except ConnectionError as exc:
        assert connect_reason(exc) == AUTH_HINT
    try:
        raise ConnectionError("Could not find any running Ray instance.\nPlease specify the one to connect to")
    except ConnectionError as exc:
        assert connect_reason(exc) == "Please specify the one to connect to"


@pytest.mark.e2e
def test_launch_with_an_unreachable_ray_address_is_exit_2_at_once() -> None:
    address = f"127.0.0.1:{_closed_port()}"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "launcher", "--profile", "ray-1-sync", "--ray-address", address, "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
    )
    took = time.monotonic() - started
    assert done.returncode == ExitCode.USAGE, done.stderr[-2000:]
    assert done.stderr.strip().splitlines() == [
        f"launch: error: --ray-address {address}: no Ray cluster reachable at {address} (Connection refused within 5 s)"
    ]
    assert took < 30, took  # never the minutes ray.init would retry for


@contextlib.contextmanager
def cluster_head(tmp_path: Path, *, cpus: int) -> Iterator[str]:
    """A Ray cluster that is not the launcher's: a head with ``cpus`` CPUs under the launcher's own reaper (so
    that closing its stdin stops every process of it), token authentication on. Yields its GCS address."""
    marker = f"test-{os.getpid()}-{secrets.token_hex(4)}"
    temp_dir = Path(tempfile.mkdtemp(prefix="launch-ray-", dir="/tmp"))
    env = {**os.environ, OWNER_ENV: marker, **HEAD_ENV, **LOOPBACK_ENV, AUTH_ENV: "token"}
    env.pop("RAY_ADDRESS", None)
    argv = [sys.executable, "-m", "launcher.backends.ray_reaper", marker, str(temp_dir), "--"]
    reaper = subprocess.Popen(
        [*argv, *head_command(temp_dir, cpus)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        cwd=REPO,
        start_new_session=True,
    )
    try:
        assert reaper.stdout is not None
        address = ""
        for raw in reaper.stdout:
            line = raw.decode().strip()
            if line.startswith("ready "):
                address = line.removeprefix("ready ")
                break
        assert address, "the head did not come up"
        yield address
    finally:
        assert reaper.stdin is not None
        reaper.stdin.close()  # EOF: the reaper stops the head and kills whatever is left of it
        reaper.wait(timeout=60)
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.mark.e2e
def test_a_cluster_whose_nodes_offer_no_cpu_is_exit_2_before_anything_is_deployed(tmp_path: Path) -> None:
    """A head started with no CPU and no worker node: Serve would wait for ever for a place for the replicas."""
    with cluster_head(tmp_path, cpus=0) as address:
        started = time.monotonic()
        done = subprocess.run(
            [
                sys.executable, "-m", "launcher", "--profile", "ray-split-3-offload", "--ray-address", address,
                "--port", "0",
            ],
            capture_output=True, text=True, timeout=120, cwd=REPO, check=False,
            env={**os.environ, "PYTHONPATH": str(REPO), AUTH_ENV: "token", **LOOPBACK_ENV},
        )  # fmt: skip
        took = time.monotonic() - started
    assert done.returncode == ExitCode.USAGE, done.stderr[-3000:]
    assert done.stderr.strip().splitlines()[-1] == (
        f"launch: error: --ray-address {address}: the cluster's nodes offer 0 CPUs, and ray-split-3-offload's "
        "4 replicas need some: add a worker node (a head started with --num-cpus 0 runs none)"
    )
    assert took < 60, took
