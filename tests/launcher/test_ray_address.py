"""``--ray-address``: an address that cannot be a Ray cluster is one line with exit 2 at once, never a hang.

``ray.init`` retries an unreachable GCS for minutes (measured with Ray 2.60: still waiting after 2 min); the
launcher checks the address first (:func:`launcher.backends.ray.check_address`).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from launcher.backends.ray import check_address
from launcher.errors import ConfigError, ExitCode

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
