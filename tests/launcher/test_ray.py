"""Ray Serve: the ray and ray-split backends served for real, their clean-up, the split topology, serve-config."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner

from launcher.backends.ray_config import applications, replica_cpus
from launcher.child import ServerProcess
from launcher.cli import main
from launcher.errors import ExitCode, StartupError
from launcher.probe.client import RequestSpec, run_burst
from launcher.probe.scenarios import ProbeOptions, plan
from profiles.model import SPLIT_API_PREFIX
from tests.conftest import builtin, probe_killing_one
from tests.http import get, get_json
from tests.launcher.raysession import (
    LOOPBACK,
    kill_all,
    kind,
    kinds,
    listening,
    session_processes,
    stray_ray_processes,
    wait_all_gone,
)

pytest.importorskip("ray.serve.schema", reason="the ray extra: pip install -e '.[ray]'")

CLEANUP_SECONDS = 30.0
GONE_SECONDS = 10.0
"""How long any process of a local instance may outlive its launcher, even a SIGKILLed one."""
LOCAL_PROFILE = "ray-1-offload"
SESSION_KINDS = frozenset(
    {
        "reaper",
        "ray start",
        "gcs_server",
        "raylet",
        "ray::DashboardAgent",
        "ray::RuntimeEnvAgent",
        "ray::ServeController",
        "ray::ProxyActor",
        "ray::ServeReplica",
    }
)
"""What a local instance serving a profile runs at the least (see tests.launcher.raysession.kind)."""


def check_nothing_left(session: list[psutil.Process], since: float, what: str) -> float:
    """Every process of ``session`` gone within GONE_SECONDS, no ``ray::`` process left behind; seconds it took."""
    try:
        left, seconds = wait_all_gone(session, GONE_SECONDS)
        assert left == [], f"{what}: still running {GONE_SECONDS:g} s later: {left}"
        stray = stray_ray_processes(since)
        assert stray == [], f"{what}: ray:: processes left without a raylet: {stray}"
        return seconds
    finally:
        kill_all(session)  # a failed check must not leave them running


def end_launcher(server: ServerProcess, sig: signal.Signals) -> float:
    """Send ``sig`` as a supervisor or a user would (SIGINT: as a terminal's Ctrl-C); seconds until it exited."""
    launcher = server.pid or 0
    started = time.monotonic()
    if sig == signal.SIGINT:
        os.killpg(launcher, sig)  # Ctrl-C: the terminal signals the whole foreground process group
    else:
        os.kill(launcher, sig)  # the launcher alone: Ray's processes are not in its group anyway
    while server.alive() and time.monotonic() - started < server.profile.stop_seconds + 5:
        time.sleep(0.05)
    return time.monotonic() - started


def end_and_check(server: ServerProcess, sig: signal.Signals) -> None:
    """List every process of the server's Ray session, end the launcher with ``sig``, check that all of them go."""
    launcher = server.pid or 0
    since = psutil.Process(launcher).create_time()
    session = session_processes(launcher)
    seen = sorted(kinds(session))
    try:
        assert set(seen) >= SESSION_KINDS, seen
        # The replicas that reported ready are processes of the session.
        assert set(server.pids) <= {p.pid for p in session}
    except AssertionError:
        kill_all(session)
        raise
    took = end_launcher(server, sig)
    stopped = server.stop()  # it has exited: its status
    if sig != signal.SIGKILL:
        assert stopped.returncode == 0, server.log_tail()
        assert took < server.profile.stop_seconds, server.log_tail()
    gone = check_nothing_left(session, since, f"{server.profile.name} after {sig.name}")
    print(
        f"\n{server.profile.name} {sig.name}: launcher exited after {took:.1f} s (status {stopped.returncode}), "
        f"its {len(session)} Ray processes all gone {gone:.1f} s later: {', '.join(seen)}"
    )


# --- no process: the configuration -------------------------------------------------------------


@pytest.mark.parametrize("name", ["ray-1-sync", "ray-3-offload", "ray-split-3-async"])
def test_serve_config_is_accepted_by_rays_own_schema(name: str, runner: CliRunner, tmp_path: Path) -> None:
    from ray.serve.schema import ServeDeploySchema

    out = tmp_path / "serve.json"
    result = runner.invoke(main, ["serve-config", "--profile", name, "-o", str(out)])
    assert result.exit_code == 0, result.output
    config = ServeDeploySchema.model_validate(json.loads(out.read_text()))
    profile = builtin(name)
    apps = {app.name: app for app in config.applications}
    assert set(apps) == {a.name for a in applications(profile)}
    for expected in applications(profile):
        app = apps[expected.name]
        assert app.route_prefix == expected.route_prefix
        (deployment,) = app.deployments
        assert deployment.num_replicas == expected.replicas
        assert deployment.max_ongoing_requests == profile.max_ongoing_requests == 5
        assert app.runtime_env["env_vars"]["LAUNCH_MODE"] == profile.mode
        # Never the launcher-only settings: a replica with a supervisor pid would exit.
        assert "LAUNCH_SUPERVISOR_PID" not in app.runtime_env["env_vars"]
    yaml_result = runner.invoke(main, ["serve-config", "--profile", name, "--format", "yaml"])
    assert yaml_result.exit_code == 0
    import yaml  # type: ignore[import-untyped]

    assert ServeDeploySchema.model_validate(yaml.safe_load(yaml_result.output)) == config


def test_serve_config_refuses_a_profile_that_is_not_ray(runner: CliRunner) -> None:
    result = runner.invoke(main, ["serve-config", "--profile", "uvicorn-1-sync"])
    assert result.exit_code == 2 and "serve-config is for the ray backends" in result.output


def test_replica_cpu_shares_fit_the_machine_in_rays_fixed_point() -> None:
    # 3 replicas of 2/3 CPU rounded up (0.6667) would need 2.0001 CPUs: the third would never be scheduled.
    assert replica_cpus(builtin("ray-3-sync"), 2.0) * 3 <= 2.0
    assert replica_cpus(builtin("ray-split-3-sync"), 2.0) * 4 <= 2.0
    assert replica_cpus(builtin("ray-1-sync"), 16.0) == 1.0
    assert replica_cpus(builtin("ray-1-sync"), None) == 1.0


def test_the_split_topologys_api_requests_go_under_its_prefix() -> None:
    options = ProbeOptions()
    split = plan("mixed", builtin("ray-split-3-sync"), options)
    assert all(s.path.startswith(f"{SPLIT_API_PREFIX}/test1") for s in split if s.kind == "api")
    assert all(s.path == "" for s in split if s.kind == "demo")
    assert all(s.path.startswith("/test1") for s in plan("mixed", builtin("ray-3-sync"), options) if s.kind == "api")


# --- real Ray instances ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def split_server() -> Iterator[ServerProcess]:
    """One split-topology server for the module: the demo in one replica, the API in three."""
    server = ServerProcess(profile=builtin("ray-split-3-sync", model="none"))
    server.start()
    try:
        yield server
    finally:
        session = session_processes(server.pid or 0)
        server.stop()
        left, _ = wait_all_gone(session, CLEANUP_SECONDS)
        kill_all(session)
        server.cleanup()
        assert left == []


def _serves(server: ServerProcess, api: str) -> None:
    profile = server.profile
    assert len(server.pids) == profile.processes
    status, health = get_json(f"{server.url}/health")
    assert status == 200 and health["status"] == "ok" and health["pid"] in server.pids
    status, page, headers = get(f"{server.url}/")
    assert status == 200 and b"<html" in page.lower() and headers["content-type"].startswith("text/html")
    status, config = get_json(f"{server.url}/config")
    assert status == 200 and {d.get("api_name") for d in config["dependencies"]} >= {"sleep", "cpu", "generate"}
    bodies = [get_json(f"{server.url}{api}/test1?seconds=0.2")[1] for _ in range(2 * profile.workers)]
    assert all(b["work"] == "sleep" and b["pid"] in server.pids for b in bodies)


@pytest.mark.e2e
@pytest.mark.parametrize("name", ["ray-1-sync", "ray-3-sync"])
def test_ray_serves_page_and_api_and_leaves_nothing(name: str, serve: Callable[..., ServerProcess]) -> None:
    server = serve(builtin(name, model="none"))
    _serves(server, "")
    launcher = server.pid or 0
    session = session_processes(launcher)
    # The replicas are Ray's processes of this session, each one reported ready.
    assert set(server.pids) <= {p.pid for p in session}
    # A local instance is on loopback (by default Ray's GCS, raylet and agents listen on all interfaces)...
    sockets = listening(session)
    assert {"gcs_server", "raylet"} <= {name for _, name in sockets}, sockets
    open_to_all = {(ip, name) for ip, name in sockets if ip not in LOOPBACK}
    # ...but for one server Serve hard-codes: each replica's inter-deployment gRPC port, bound to "[::]:0"
    # (ray/serve/_private/replica.py, Ray 2.60). The README says so; a systemd unit's IPAddressDeny= drops it.
    # (opened once the replica is initialized, which may come just after its READY).
    assert {name for _, name in open_to_all} <= {"ray::ServeReplica:launch:launch"}, open_to_all
    stopped = server.stop(sig=signal.SIGTERM, timeout=40)
    assert stopped.returncode == 0, server.log_tail()
    assert not stopped.forced, f"needed SIGKILL: {server.log_tail()}"
    # The launcher waits for its reaper, which waits until nothing of the instance is left.
    assert wait_all_gone(session, 2)[0] == []


@pytest.mark.e2e
def test_split_serves_the_demo_at_root_and_the_api_under_its_prefix(split_server: ServerProcess) -> None:
    _serves(split_server, SPLIT_API_PREFIX)
    api_pids = {get_json(f"{split_server.url}{SPLIT_API_PREFIX}/health")[1]["pid"] for _ in range(6)}
    demo_pid = get_json(f"{split_server.url}/health")[1]["pid"]
    assert demo_pid not in api_pids


@pytest.mark.e2e
def test_split_loses_no_demo_click_and_keeps_the_queue_in_one_process(split_server: ServerProcess) -> None:
    clicks = [RequestSpec(kind="demo", work="sleep", api_name="/sleep", args=(0.1,)) for _ in range(10)]
    records = []
    for _ in range(3):
        burst = asyncio.run(run_burst(split_server.url, clicks, timeout=60, workers=1, health=False))
        records += [r for r in burst if r.kind == "demo"]
    assert len(records) == 30
    lost = [f"{r.error}: {r.detail}" for r in records if not r.ok]
    assert lost == [], lost
    # Attribution: every step of every click (queue join, event stream, the work) answered by one process.
    pids = {pid for r in records for pid in (*r.steps.values(), r.pid)}
    assert len(pids) == 1 and pids <= set(split_server.pids), pids
    assert all({"join", "stream"} <= set(r.steps) for r in records)


@pytest.mark.e2e
def test_split_runs_api_cpu_work_on_several_processes(split_server: ServerProcess) -> None:
    cpu = [RequestSpec(kind="api", work="cpu", path=f"{SPLIT_API_PREFIX}/test2?seconds=0.3") for _ in range(6)]
    records = asyncio.run(run_burst(split_server.url, cpu, timeout=60, workers=3, health=False))
    work = [r for r in records if r.kind == "api"]
    assert all(r.ok for r in work), [r.error for r in work]
    pids = {r.pid for r in work}
    assert len(pids) > 1, pids
    demo_pid = get_json(f"{split_server.url}/health")[1]["pid"]
    assert demo_pid not in pids


@pytest.mark.e2e
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_a_killed_or_stopped_launcher_leaves_no_process_of_its_ray_instance(
    sig: signal.Signals, serve: Callable[..., ServerProcess]
) -> None:
    # SIGKILL: the launcher runs no clean-up; its reaper sees it go and ends the instance, agents included.
    # SIGTERM, SIGINT (a terminal's Ctrl-C, to the launcher's whole group): a graceful stop, exit 0.
    end_and_check(serve(builtin(LOCAL_PROFILE, model="none")), sig)


@pytest.mark.e2e
def test_a_killed_split_launcher_leaves_no_process_of_its_ray_instance(serve: Callable[..., ServerProcess]) -> None:
    server = serve(builtin("ray-split-3-offload", model="none"))
    assert len(server.pids) == server.profile.processes == 4
    end_and_check(server, signal.SIGKILL)


INTERRUPTED_CALL = """
import os, signal, sys, threading, time
import ray
from launcher.backends.ray import RayServe
ray.init(num_cpus=1, include_dashboard=False, logging_level="ERROR", _temp_dir=sys.argv[1])
try:
    @ray.remote
    def slow():
        time.sleep(15)
    ref = slow.remote()
    run = RayServe.__new__(RayServe)  # only its signal handling: no spec, no start
    run.stop, run.starting, run.leaving = threading.Event(), True, False
    run._take_signals()
    threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGTERM)).start()
    started = time.monotonic()
    try:
        ray.get(ref, timeout=10)
        print("not interrupted: the call returned")
    except KeyboardInterrupt:
        print(f"interrupted after {time.monotonic() - started:.1f} s")
    except Exception as exc:
        print(f"not interrupted: {type(exc).__name__} after {time.monotonic() - started:.1f} s")
finally:
    ray.shutdown()
"""


@pytest.mark.e2e
def test_a_stop_signal_interrupts_a_blocking_ray_call_at_once(tmp_path: Path) -> None:
    # The launcher can be READY while serve.run_many still waits in Ray's compiled code; a head that dies then
    # leaves that call waiting a minute on the dead instance, and only the stop signal the launcher sends itself
    # gets it out. Ray's wait honours a KeyboardInterrupt from a handler and drops anything else (CI,
    # 2026-12-02: the launcher sat there 50 s after its head was killed).
    temp = Path(tempfile.mkdtemp(prefix="launch-ray-test-"))  # short: Ray's socket paths have a length limit
    try:
        done = subprocess.run(
            [sys.executable, "-c", INTERRUPTED_CALL, str(temp)],
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    verdict = [line for line in done.stdout.splitlines() if "interrupted" in line]
    assert len(verdict) == 1 and verdict[0].startswith("interrupted after"), done.stdout + done.stderr[-2000:]
    assert float(verdict[0].split()[2]) < 5.0, verdict


@pytest.mark.e2e
def test_a_head_that_dies_under_a_serving_launcher_stops_it_with_one_error_and_leaves_nothing(
    serve: Callable[..., ServerProcess],
) -> None:
    server = serve(builtin(LOCAL_PROFILE, model="none"))
    launcher = server.pid or 0
    since = psutil.Process(launcher).create_time()
    session = session_processes(launcher)
    (head,) = [p for p in session if kind(p) == "ray start"]
    head.kill()
    started = time.monotonic()
    while server.alive() and time.monotonic() - started < CLEANUP_SECONDS:
        time.sleep(0.05)
    took = time.monotonic() - started
    assert server.stop().returncode == ExitCode.SERVER_DIED, server.log_tail()
    errors = [line for line in server.log_text().splitlines() if line.startswith("launch: error:")]
    assert errors == [
        f"launch: error: {LOCAL_PROFILE}: Ray's local instance stopped: its head exited (killed by SIGKILL)"
    ], errors
    gone = check_nothing_left(session, since, "the head killed")
    print(f"\nthe head killed: the launcher exited after {took:.1f} s, all gone {gone:.1f} s later")


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("stage", "sig"),
    [("raylet", signal.SIGKILL), ("ray::ServeController", signal.SIGKILL), ("ray::ServeController", signal.SIGTERM)],
    ids=["head-up-SIGKILL", "deploying-SIGKILL", "deploying-SIGTERM"],
)
def test_a_launcher_ended_mid_start_leaves_no_process_of_its_ray_instance(
    stage: str, sig: signal.Signals, tmp_path: Path
) -> None:
    # "raylet": the head is up, the launcher is joining it; "ray::ServeController": Serve is deploying.
    server = ServerProcess(profile=builtin(LOCAL_PROFILE, model="none"), log_path=tmp_path / "launch.log")
    failed: list[BaseException] = []

    def start() -> None:
        try:
            server.start()
        except BaseException as exc:  # handed to the test
            failed.append(exc)

    starter = threading.Thread(target=start, daemon=True)
    starter.start()
    session: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 150
        while stage not in kinds(session) and time.monotonic() < deadline and starter.is_alive():
            time.sleep(0.05)
            session = session_processes(server.pid) if server.pid else []
        assert stage in kinds(session), f"no {stage} before READY: {server.log_tail()}"
        assert not server.url, "READY came before the kill"
        launcher = server.pid or 0
        since = psutil.Process(launcher).create_time()
        session = session_processes(launcher)
        seen = sorted(kinds(session))
        os.kill(launcher, sig)
        starter.join(60)
        # SIGTERM: the start abandoned, a clean exit; SIGKILL: no clean-up at all in the launcher.
        status = "-9" if sig == signal.SIGKILL else "0"
        assert failed and isinstance(failed[0], StartupError), failed
        assert f"exited with status {status} before it was ready" in str(failed[0]), failed
        gone = check_nothing_left(session, since, f"{sig.name} once {stage} ran")
        print(f"\n{sig.name} once {stage} ran: its {len(session)} Ray processes all gone {gone:.1f} s later: {seen}")
    finally:
        server.stop()
        kill_all(session)


@pytest.mark.e2e
def test_a_head_that_does_not_start_is_one_error_line_with_rays_reason_and_leaves_nothing(tmp_path: Path) -> None:
    # Ray's own setting: the head waits 0 s for its GCS to publish its port, so `ray start` fails at once.
    server = ServerProcess(
        profile=builtin(LOCAL_PROFILE, model="none"),
        log_path=tmp_path / "launch.log",
        env={"RAY_gcs_server_port_wait_time_s": "0"},
    )
    since = time.time()
    with pytest.raises(StartupError, match="exited with status 3"):
        server.start(timeout=150)
    log = server.log_text()
    errors = [line for line in log.splitlines() if line.startswith("launch: error:")]
    assert len(errors) == 1, log
    assert "Ray's local head did not start (exit status 1): RuntimeError: Timed out waiting for file" in errors[0]
    assert "Traceback" not in log
    assert session_processes(server.pid or 0) == []
    assert stray_ray_processes(since) == []


@pytest.mark.e2e
def test_a_replica_killed_mid_burst_is_named_replaced_and_the_probe_goes_on() -> None:
    from launcher import procs
    from launcher.probe import metrics
    from launcher.probe.scenarios import ProbeOptions

    def a_replica() -> int | None:
        # The probe's own launcher: the module's split server is a child of this process too.
        for launcher in procs.descendants(os.getpid()):
            try:
                if "ray-3-sync" not in psutil.Process(launcher).cmdline():
                    continue
            except psutil.Error:
                continue
            serving = [p for p in session_processes(launcher) if "ray::ServeReplica" in " ".join(p.cmdline())]
            if serving:
                return serving[0].pid
        return None

    run, killed = probe_killing_one(
        builtin("ray-3-sync", model="none"),
        # 4 s sleeps, the kill 0.8 s in: it lands inside the burst even on a loaded machine.
        ProbeOptions(scenarios=("sleep", "cpu", "liveness"), requests=6, seconds=4.0, cpu_seconds=0.5, repeat=1),
        a_replica,
    )
    (result,) = run.profiles
    assert killed, "no replica was found to kill"
    sleep, cpu = result.scenarios
    died = next(v for v in sleep.verdicts if v.expectation == "no worker dies during the burst")
    assert not died.passed and str(killed[0]) in died.observed, died.observed
    assert any(e.pid == killed[0] for e in sleep.log_events), sleep.log_events
    # Every request is accounted for: completed, or failed with a class (Ray's proxy answers for the dead replica).
    api = [r for r in sleep.records if r.kind == "api"]
    assert len(api) == 6 and all(r.ok or r.error for r in api), api
    print(f"\nkilled replica {killed[0]}: " + ", ".join(sorted(f"{r.error}" for r in api if not r.ok)))
    # The probe went on: the CPU burst ran, every request answered by a live replica, none by the dead one.
    work = metrics.work_records(cpu.records)
    assert len(work) == 6 and all(r.ok for r in work), [(r.error, r.detail) for r in work if not r.ok]
    assert killed[0] not in {r.pid for r in work}
    assert not result.passed
