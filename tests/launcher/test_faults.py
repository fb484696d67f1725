"""Faults: signals, a killed launcher, a killed worker, never-ready servers, load, stalled clients.

Real processes, real signals, loopback only, every wait bounded. Servers run
with ``model = "none"`` where the model plays no part, to keep start-up short.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from launcher import procs
from launcher.backends import BACKEND_NAMES
from launcher.child import ServerProcess, launch_command
from launcher.probe import metrics
from launcher.probe.runner import run_probe
from launcher.probe.scenarios import ProbeOptions, ProfileTarget
from launcher.procs import group_alive
from profiles.model import RAY_BACKENDS
from tests.conftest import builtin, probe_killing_one
from tests.http import get_json

BACKENDS = ("uvicorn", "gunicorn", "hypercorn")
# The Ray backends' signal and clean-up tests are in tests/launcher/test_ray.py.
MATRIX = [(backend, workers) for backend in BACKEND_NAMES if backend not in RAY_BACKENDS for workers in (1, 3)]
IN_PROCESS_AT_ONE_WORKER = ("uvicorn", "hypercorn")
"""Backends that serve one worker in the launcher itself; the others always fork or spawn workers."""


def _wait_gone(pids: list[int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        alive = [p for p in pids if procs.is_alive(p)]
        if not alive:
            return []
        time.sleep(0.05)
    return [p for p in pids if procs.is_alive(p)]


@pytest.mark.e2e
@pytest.mark.parametrize(("backend", "workers"), MATRIX)
def test_sigint_stops_gracefully_and_leaves_nothing(
    backend: str, workers: int, serve: Callable[..., ServerProcess]
) -> None:
    server = serve(builtin(f"{backend}-{workers}-sync", model="none"))
    everything = [server.pid or 0, *procs.descendants(server.pid or 0)]
    stopped = server.stop(sig=signal.SIGINT, timeout=5)
    assert stopped.returncode == 0, server.log_tail()
    assert not stopped.forced, f"needed SIGKILL: {server.log_tail()}"
    assert stopped.seconds < 5
    assert _wait_gone(everything, 1) == []


def _until_gone(server: ServerProcess, seconds: float) -> float:
    started = time.monotonic()
    while server.alive() and time.monotonic() - started < seconds:
        time.sleep(0.05)
    return time.monotonic() - started


@pytest.mark.e2e
@pytest.mark.parametrize("backend", ["uvicorn", "hypercorn"])
def test_second_ctrl_c_forces_a_stop_with_a_request_in_flight(
    backend: str, serve: Callable[..., ServerProcess]
) -> None:
    server = serve(builtin(f"{backend}-1-sync", model="none", timeout=60))
    threading.Thread(target=_quietly, args=(f"{server.url}/test1?seconds=30",), daemon=True).start()
    time.sleep(0.5)
    os.kill(server.pid or 0, signal.SIGINT)
    time.sleep(1.5)
    assert server.alive(), "the first Ctrl-C should wait for the request in flight"
    os.kill(server.pid or 0, signal.SIGINT)
    assert _until_gone(server, 10) < 5, server.log_tail()


@pytest.mark.e2e
def test_gunicorn_ctrl_c_is_a_quick_shutdown(serve: Callable[..., ServerProcess]) -> None:
    # gunicorn documents INT and QUIT as quick shutdown (TERM is the graceful one).
    server = serve(builtin("gunicorn-1-sync", model="none", timeout=60))
    threading.Thread(target=_quietly, args=(f"{server.url}/test1?seconds=30",), daemon=True).start()
    time.sleep(0.5)
    os.kill(server.pid or 0, signal.SIGINT)
    assert _until_gone(server, 10) < 5, server.log_tail()


def _quietly(url: str) -> None:
    try:
        get_json(url, 40)
    except (OSError, ValueError):
        pass  # the server is being stopped under it (reset, or an empty answer): that is the point


@pytest.mark.e2e
@pytest.mark.parametrize(("backend", "workers"), MATRIX)
def test_sigkilled_launcher_takes_its_workers_along(
    backend: str, workers: int, serve: Callable[..., ServerProcess]
) -> None:
    server = serve(builtin(f"{backend}-{workers}-sync", model="none"))
    launcher = server.pid or 0
    workers_and_helpers = procs.descendants(launcher)
    if workers > 1 or backend not in IN_PROCESS_AT_ONE_WORKER:
        assert set(server.pids) <= set(workers_and_helpers)
    os.kill(launcher, signal.SIGKILL)
    assert _until_gone(server, 5) < 5  # reaps the launcher (a zombie still counts in its group)
    # Workers die of the parent-death signal; helpers (resource tracker) on EOF.
    assert _wait_gone(workers_and_helpers, 5) == []
    deadline = time.monotonic() + 5
    while group_alive(launcher) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not group_alive(launcher)


def _launchers_of(pid: int) -> list[int]:
    found = []
    for child in procs.descendants(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"launcher" in cmdline and b"--profile" in cmdline:
            found.append(child)
    return found


@pytest.mark.e2e
def test_worker_killed_mid_burst_is_named_and_the_probe_goes_on(tmp_path: Path) -> None:
    def a_worker() -> int | None:
        for launcher in _launchers_of(os.getpid()):
            workers = [
                p for p in procs.descendants(launcher) if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()
            ]
            if workers:
                return workers[0]
        return None

    run, killed = probe_killing_one(
        builtin("uvicorn-3-sync", model="none"),
        ProbeOptions(scenarios=("sleep", "cpu", "liveness"), requests=6, seconds=2.0, repeat=1),
        a_worker,
    )
    (result,) = run.profiles
    assert killed, "no worker was found to kill"
    sleep, cpu = result.scenarios
    lost = next(v for v in sleep.verdicts if v.expectation == "no worker dies during the burst")
    assert not lost.passed and str(killed[0]) in lost.observed
    failed = [r for r in sleep.records if r.kind == "api" and not r.ok]
    # Every request is accounted for: completed, or failed with a class.
    assert len([r for r in sleep.records if r.kind == "api"]) == 6
    assert all(r.error in ("disconnected", "reset", "truncated") for r in failed), failed
    assert any(e.pid == killed[0] for e in sleep.log_events)
    # The probe went on: the next scenario ran on the restarted worker set.
    assert cpu.scenario == "cpu" and len(metrics.work_records(cpu.records)) == 6
    assert not result.passed


STOP_BOUND_S = 5.0
"""Issue 14: a stop in any state, the replacement of a timed-out worker included, within 5 s and without SIGKILL."""


@pytest.mark.e2e
@pytest.mark.parametrize("when", ["at_once", "in_lifespan"])
def test_stop_while_gunicorn_replaces_a_timed_out_worker_is_bounded(
    when: str, serve: Callable[..., ServerProcess]
) -> None:
    # The probe's timeout scenario ends this way: a blocking async request
    # past a short worker timeout, the arbiter kills that worker and forks a
    # replacement, and the stop follows the failed request at once (the fork
    # window, where the arbiter's handlers in the new worker swallowed
    # SIGTERM) or lands while the replacement loads its model.
    server = serve(builtin("gunicorn-3-async", timeout=2))
    before = set(server.pids)
    started = time.monotonic()
    _quietly(f"{server.url}/test1?seconds=8")
    assert time.monotonic() - started < 7, "the worker timeout did not end the request"
    if when == "in_lifespan":
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            fresh = [p for p in procs.descendants(server.pid or 0) if p not in before]
            if any(f"[{p}] [INFO] Waiting for application startup" in server.log_text() for p in fresh):
                break
            time.sleep(0.02)
        else:
            pytest.fail(f"no replacement reached its lifespan: {server.log_tail()}")
    everything = [server.pid or 0, *procs.descendants(server.pid or 0)]
    stopped = server.stop(timeout=STOP_BOUND_S + 5)
    assert not stopped.forced, f"needed SIGKILL: {server.log_tail()}"
    assert stopped.seconds <= STOP_BOUND_S, server.log_tail()
    assert stopped.returncode == 0, server.log_tail()
    assert _wait_gone(everything, 1) == []


@pytest.mark.e2e
def test_a_profile_that_never_becomes_ready_is_bounded(tmp_path: Path) -> None:
    # Loading torch and the model takes several seconds: far past a 2 s bound.
    started = time.monotonic()
    run = run_probe([ProfileTarget(profile=builtin("uvicorn-1-sync"))], ProbeOptions(start_timeout=2.0))
    (result,) = run.profiles
    assert result.status == "did_not_start"
    assert "not ready after 2 s" in (result.error or "")
    assert result.log_tail  # the child's last lines, for the user
    assert time.monotonic() - started < 30


@pytest.mark.e2e
def test_a_profile_that_cannot_start_does_not_stop_the_matrix(tmp_path: Path) -> None:
    broken = ProfileTarget(profile=builtin("gunicorn-3-sync", model=str(tmp_path / "missing")))
    fine = ProfileTarget(profile=builtin("hypercorn-1-sync", model="none"))
    run = run_probe([broken, fine], ProbeOptions(scenarios=("sleep",), seconds=0.2))
    first, second = run.profiles
    assert first.status == "did_not_start"
    assert "ModelLoadError" in (first.error or "") and "missing" in (first.error or "")
    assert second.status == "ok" and second.passed


@pytest.mark.e2e
@pytest.mark.parametrize("profile", ["uvicorn-1-sync", "gunicorn-3-sync"])
def test_five_hundred_concurrent_requests_are_all_accounted_for(profile: str) -> None:
    run = run_probe(
        [ProfileTarget(profile=builtin(profile, model="none"))],
        ProbeOptions(scenarios=("sleep", "liveness"), requests=500, seconds=1.0, repeat=1),
    )
    (result,) = run.profiles
    (sleep,) = result.scenarios
    api = [r for r in sleep.records if r.kind == "api"]
    assert len(api) == 500
    assert all(r.ok or r.error for r in api)
    counts = metrics.counts_by_pid(sleep.records)
    overlaps = metrics.overlap_by_pid(sleep.records)
    # Past anyio's 40 threads a worker queues: its overlap is capped at 40.
    for pid, count in counts.items():
        assert overlaps[pid] == min(count, 40)
    names = {v.expectation: v for v in sleep.verdicts}
    if max(counts.values()) > 40:
        queueing = next(v for e, v in names.items() if e.startswith("past 40 threads"))
        assert queueing.passed, queueing
    assert all(v.passed for v in sleep.verdicts if "worker dies" in v.expectation)


@pytest.mark.e2e
@pytest.mark.parametrize("backend", BACKENDS)
def test_clients_that_stall_mid_request_do_not_hang_the_probe(backend: str) -> None:
    started = time.monotonic()
    run = run_probe(
        [ProfileTarget(profile=builtin(f"{backend}-1-sync", model="none"))],
        ProbeOptions(scenarios=("slowclients",)),
    )
    (result,) = run.profiles
    (slow,) = result.scenarios
    (verdict,) = slow.verdicts
    assert "half-sent requests" in verdict.expectation
    # Each backend either keeps /health fast (PASS) or the probe says it did not: a finding, not a hang.
    assert len([r for r in slow.records if r.kind == "health"]) >= 10
    assert time.monotonic() - started < 90
    assert verdict.passed, verdict  # measured here: none of the three stalls on slow headers


@pytest.mark.e2e
def test_non_loopback_host_warns_that_nothing_is_authenticated(tmp_path: Path) -> None:
    log = tmp_path / "log"
    with log.open("wb") as sink:
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "launcher",
                "--profile",
                "uvicorn-1-sync",
                "--model",
                "none",
                "--host",
                "0.0.0.0",
                "--port",
                "0",
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while "serving" not in log.read_text() and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.1)
        text = log.read_text()
        assert "no authentication" in text
        assert "gradio.live" not in text and "share link" not in text.lower()
    finally:
        os.killpg(child.pid, signal.SIGTERM)
        child.wait(timeout=20)


def test_profile_values_reach_the_child_as_separate_arguments() -> None:
    profile = builtin("uvicorn-1-sync", model="/tmp/a model; rm -rf ~")
    argv = launch_command(profile, fd=7)
    assert argv[argv.index("--model") + 1] == "/tmp/a model; rm -rf ~"
    assert argv[:3] == [sys.executable, "-m", "launcher"]


def test_no_shell_anywhere() -> None:
    root = Path(__file__).resolve().parents[2]
    offenders = [
        str(path.relative_to(root))
        for folder in ("launcher", "app", "profiles")
        for path in (root / folder).rglob("*.py")
        if "shell=True" in path.read_text() or "os.system(" in path.read_text()
    ]
    assert offenders == []
