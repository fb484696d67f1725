"""The split topology behind Caddy, served for real: page, demo clicks, API spread, errors, SIGKILL (e2e)."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from launcher.child import ServerProcess
from launcher.errors import ExitCode
from launcher.probe.client import RequestSpec, run_burst
from launcher.split import sweep_private_folders
from tests.conftest import builtin
from tests.http import get, get_json

pytestmark = pytest.mark.e2e

PROFILE = "split-gunicorn-3-offload"
GONE_WITHIN_SECONDS = 5.0
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def split_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One split server for the module (N+1 servers and Caddy take a while to start on 2 cores)."""
    log = tmp_path_factory.mktemp("split") / "launch.log"
    server = ServerProcess(profile=builtin(PROFILE, model="none"), log_path=log)
    server.start(timeout=300)
    try:
        yield server
    finally:
        server.stop()


def family(pid: int) -> list[psutil.Process]:
    """``pid`` and every descendant of it."""
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def test_the_page_works_at_root_and_the_api_beside_it(split_server: ServerProcess) -> None:
    assert len(split_server.pids) == split_server.profile.processes == 4
    status, page, raw_headers = get(f"{split_server.url}/")
    headers = {k.lower(): v for k, v in raw_headers.items()}  # Caddy writes them Go's canonical way
    assert status == 200 and b"<html" in page.lower() and headers["content-type"].startswith("text/html")
    assert headers.get("via", "").endswith("Caddy"), headers
    status, config = get_json(f"{split_server.url}/config")
    assert status == 200 and {d.get("api_name") for d in config["dependencies"]} >= {"sleep", "cpu", "generate"}
    status, health = get_json(f"{split_server.url}/health")
    assert status == 200 and health["pid"] in split_server.pids


def test_six_simultaneous_demo_clicks_are_served_each_step_by_one_pid(split_server: ServerProcess) -> None:
    clicks = [RequestSpec(kind="demo", work="sleep", api_name="/sleep", args=(0.2,)) for _ in range(6)]
    records = [r for r in asyncio.run(run_burst(split_server.url, clicks, timeout=60, workers=1, health=False))]
    demo = [r for r in records if r.kind == "demo"]
    assert len(demo) == 6
    assert [f"{r.error}: {r.detail}" for r in demo if not r.ok] == []
    assert all({"join", "stream"} <= set(r.steps) for r in demo), [r.steps for r in demo]
    # Every queue step of every click (join, event stream, the work) answered by the one demo process.
    pids = {pid for r in demo for pid in (*r.steps.values(), r.pid)}
    assert len(pids) == 1 and pids <= set(split_server.pids), pids


def test_six_cpu_requests_land_two_on_each_api_worker_in_every_burst(split_server: ServerProcess) -> None:
    demo_pid = split_server.pids[0]
    spreads = []
    for _ in range(3):
        cpu = [RequestSpec(kind="api", work="cpu", path="/test2?seconds=0.3") for _ in range(6)]
        records = asyncio.run(run_burst(split_server.url, cpu, timeout=60, workers=3, health=False))
        work = [r for r in records if r.kind == "api"]
        assert all(r.ok for r in work), [r.error for r in work]
        counts = collections.Counter(r.pid for r in work)
        assert demo_pid not in counts
        spreads.append(sorted(counts.values()))
    # Not luck: the front picks the member with the fewest requests in flight (least_conn), one socket each.
    assert spreads == [[2, 2, 2]] * 3, spreads


def test_a_sigkilled_launcher_leaves_no_process_caddy_included(split_server: ServerProcess) -> None:
    # Last in the module: it ends the shared server.
    launcher = split_server.pid or 0
    processes = family(launcher)
    names = {p.name() for p in processes}
    assert "caddy" in names, names
    assert len(processes) >= 1 + 4 + 3 + 1, [p.cmdline()[:3] for p in processes]  # launcher, members, workers, caddy
    os.kill(launcher, signal.SIGKILL)
    _, alive = psutil.wait_procs(processes, timeout=GONE_WITHIN_SECONDS)
    assert alive == [], [(p.pid, p.cmdline()[:3]) for p in alive]
    # Its private folder (Caddy's JSON) is all that is left; the next split launcher's start removes it.
    left = list(Path(tempfile.gettempdir()).glob(f"launch-split-{launcher}-*"))
    assert len(left) == 1
    assert sweep_private_folders() and not left[0].exists()


def _launch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "launcher", "--profile", PROFILE, "--port", "0", "--model", "none", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_no_caddy_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = _launch("--front-bin", str(tmp_path / "no-caddy"))
    assert done.returncode == ExitCode.USAGE, done.stderr
    assert done.stderr.splitlines() == [f"launch: error: --front-bin {tmp_path / 'no-caddy'}: not an executable file"]


def test_a_config_caddy_refuses_is_one_line_quoting_it_and_nothing_is_left(tmp_path: Path) -> None:
    # A stand-in caddy that refuses every configuration the way Caddy does (its console log's ERROR line).
    fake = tmp_path / "caddy"
    fake.write_text(
        "#!/bin/sh\n"
        "printf '2026/12/02 00:59:24.574\\tERROR\\tloading initial config: json: unknown field \"x\"\\n' >&2\n"
        "exit 1\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    started = time.monotonic()
    done = _launch("--front-bin", str(fake))
    assert done.returncode == ExitCode.USAGE, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("launch: error:")]
    assert lines == ['launch: error: caddy: loading initial config: json: unknown field "x"'], done.stderr
    # Refused before any member started: no model loaded, nothing to stop.
    assert time.monotonic() - started < 60


def test_an_app_with_its_demo_under_a_sub_path_is_probed_under_a_split_profile(tmp_path: Path) -> None:
    # examples/studio.py mounts its demo at /demo: the front sends /demo/* to the demo process, the rest to the API.
    result = tmp_path / "studio.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "launcher",
            "probe",
            "--app",
            "examples.studio:app",
            "--scenarios",
            "examples/studio.toml",
            "--profiles",
            "split-uvicorn-3-offload,uvicorn-3-sync",
            "-r",
            "1",
            "--json",
            str(result),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=400,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    run = json.loads(result.read_text())
    assert run["demo_paths"] == ["/demo"]
    split = next(p for p in run["profiles"] if p["profile"] == "split-uvicorn-3-offload")
    click = next(r for r in split["routes"] if r["route"] == "gradio /echo")
    assert all(v["failed"] == 0 for v in click["repeats"]), click
    recommendation = run["recommendation"]
    assert recommendation["profile"] == "split-uvicorn-3-offload", recommendation
    assert "from 3 processes" in recommendation["rejected"]["uvicorn-3-sync"]


def test_a_busy_port_is_one_line_and_exit_4() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "launcher", "--profile", PROFILE, "--port", str(port), "--model", "none"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == ExitCode.ADDRESS_IN_USE, done.stderr
    assert done.stderr.splitlines() == [f"launch: error: port {port} on 127.0.0.1 is already in use"]


def test_a_stop_while_the_groups_start_is_bounded_and_leaves_nothing() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "launcher", "--profile", PROFILE, "--port", "0", "--model", "none"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        processes: list[psutil.Process] = []
        while time.monotonic() < deadline:
            processes = family(proc.pid)
            if sum("launcher.split_member" in " ".join(p.cmdline()) for p in processes) == 4:
                break
            time.sleep(0.1)
        assert len(processes) >= 5, "the members did not start"
        processes = family(proc.pid)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=40)
        took = time.monotonic() - started
        _, alive = psutil.wait_procs(processes, timeout=GONE_WITHIN_SECONDS)
        assert alive == [], [(p.pid, p.cmdline()[:3]) for p in alive]
        assert took < 20, took
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_a_killed_api_worker_is_replaced_on_its_port_and_the_spread_holds(tmp_path: Path) -> None:
    # uvicorn's own supervisor replaces a dead worker; a single-worker member cannot, so the launcher does.
    server = ServerProcess(profile=builtin("split-uvicorn-3-offload", model="none"), log_path=tmp_path / "log")
    server.start(timeout=300)
    try:
        demo, victim, *others = server.pids
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            now = server.worker_pids_now()
            if len(now) == 4 and victim not in now:
                break
            time.sleep(0.2)
        now = server.worker_pids_now()
        assert len(now) == 4 and victim not in now and demo in now and set(others) <= set(now), now
        assert server.alive()
        assert f"launch: worker {victim} exited without stopping cleanly" in server.log_text()
        cpu = [RequestSpec(kind="api", work="cpu", path="/test2?seconds=0.3") for _ in range(6)]
        records = asyncio.run(run_burst(server.url, cpu, timeout=60, workers=3, health=False))
        counts = collections.Counter(r.pid for r in records if r.kind == "api" and r.ok)
        assert sorted(counts.values()) == [2, 2, 2] and set(counts) == set(now) - {demo}, counts
    finally:
        stopped = server.stop()
    assert stopped.returncode == 0 and not stopped.forced, server.log_tail()
