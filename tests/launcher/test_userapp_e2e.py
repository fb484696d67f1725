"""The user's app end to end: served under profiles, stopped cleanly, probed route by route, bad input refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from launcher import procs
from launcher.asgi import LAG_FIELD
from launcher.child import ServerProcess
from launcher.errors import ExitCode
from launcher.procs import group_alive
from launcher.userapp import AppSpec
from tests.conftest import builtin
from tests.http import get_json

ROOT = Path(__file__).resolve().parents[2]
GOOD = AppSpec(target="tests.launcher.userapps.apps:app")


def _others_with(marker: str) -> list[int]:
    """Processes (other than this one) whose command line mentions ``marker``: what a test left behind."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline and "pytest" not in cmdline:
            found.append(int(entry.name))
    return found


def _launch(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "launcher", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )


@pytest.mark.e2e
@pytest.mark.parametrize(("backend", "workers"), [("uvicorn", 1), ("gunicorn", 3), ("hypercorn", 1)])
def test_a_user_app_is_ready_answers_and_stops_cleanly(
    backend: str, workers: int, serve: Callable[..., ServerProcess]
) -> None:
    server = serve(builtin(f"{backend}-{workers}-sync"), app=GOOD, health_path="/health")
    assert len(server.pids) == workers
    status, body = get_json(f"{server.url}/hello")
    assert (status, body) == (200, {"hello": "world"})
    # The loop monitor reports through the notify channel while attribution is on (the probe's setting).
    deadline = time.monotonic() + 3
    while not any(LAG_FIELD in e.fields for e in server.events) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert {int(e.fields["WORKER"]) for e in server.events if LAG_FIELD in e.fields} <= set(server.pids)
    assert any(LAG_FIELD in e.fields for e in server.events)
    everything = [server.pid or 0, *procs.descendants(server.pid or 0)]
    stopped = server.stop(sig=signal.SIGINT, timeout=5)
    assert stopped.returncode == 0, server.log_tail()
    assert not stopped.forced
    assert all(not procs.is_alive(p) for p in everything)


@pytest.mark.e2e
@pytest.mark.parametrize(("backend", "workers"), [("uvicorn", 3), ("gunicorn", 3)])
def test_a_sigkilled_launcher_takes_the_user_app_workers_along(
    backend: str, workers: int, serve: Callable[..., ServerProcess]
) -> None:
    server = serve(builtin(f"{backend}-{workers}-sync"), app=GOOD)
    launcher = server.pid or 0
    children = procs.descendants(launcher)
    assert set(server.pids) <= set(children)
    os.kill(launcher, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while (any(procs.is_alive(p) for p in children) or group_alive(launcher)) and time.monotonic() < deadline:
        server.alive()  # reaps the launcher
        time.sleep(0.05)
    assert not [p for p in children if procs.is_alive(p)]
    assert not group_alive(launcher)


@pytest.mark.e2e
def test_serving_says_which_fields_do_not_apply_and_refuses_a_bad_app() -> None:
    done = _launch("--profile", "uvicorn-1-sync", "--port", "0", "--app", "tests.launcher.userapps.apps:not_an_app")
    assert done.returncode == ExitCode.USAGE
    lines = done.stderr.strip().splitlines()
    assert "mode, concurrency_limit, limiter, model of uvicorn-1-sync do not apply" in lines[0]
    assert lines[-1].startswith("launch: error: --app tests.launcher.userapps.apps:not_an_app: not_an_app is a int")
    assert "Traceback" not in done.stderr


@pytest.mark.e2e
def test_the_example_service_is_classified_route_by_route(tmp_path: Path) -> None:
    result = tmp_path / "shop.json"
    done = _launch(
        "probe",
        "--app",
        "examples.shop:app",
        "--scenarios",
        "examples/shop.toml",
        "--profiles",
        "uvicorn-1-*,gunicorn-3-*",
        "--json",
        str(result),
        "--quiet",
        timeout=240,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    run = json.loads(result.read_text())
    assert [p["profile"] for p in run["profiles"]] == ["uvicorn-1-sync", "gunicorn-3-sync"]
    expected = {
        "lookup-blocking": "blocks_event_loop",
        "lookup-threaded": "runs_concurrently",
        "lookup-async": "runs_concurrently",
        "quote": "serialized_per_worker",
        "score": "cpu_bound_threads",
        "broken": "fails",
    }
    for profile in run["profiles"]:
        classes = {r["route"]: r["class"] for r in profile["routes"]}
        assert classes == expected, profile["profile"]
        blocking = {r["route"]: r["blocks_event_loop"] for r in profile["routes"]}
        assert blocking == {route: route == "lookup-blocking" for route in expected}
        stall = next(r["longest_stall_ms"] for r in profile["routes"] if r["route"] == "lookup-blocking")
        assert stall >= 250  # at least one whole 0.3 s time.sleep on the loop
    assert run["recommendation"]["profile"] in {"uvicorn-1-sync", "gunicorn-3-sync"}
    assert "lookup-blocking" in done.stdout
    assert not _others_with("examples.shop:app")


def _scenario(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.toml"
    path.write_text(text)
    return path


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("target", "extra", "expected"),
    [
        ("tests.launcher.userapps.import_fails:app", [], "RuntimeError: DATABASE_URL is not set"),
        ("tests.launcher.userapps.apps:missing", [], "has no attribute 'missing'"),
        ("tests.launcher.userapps.apps:not_an_app", [], "not an ASGI app"),
        ("tests.launcher.userapps.apps:factory_raises", ["--factory"], "the factory raised ValueError: MODEL_PATH"),
    ],
)
def test_a_bad_app_is_one_line_and_exit_2(tmp_path: Path, target: str, extra: list[str], expected: str) -> None:
    scenario = _scenario(tmp_path, '[[burst]]\npath = "/hello"\n')
    done = _launch("probe", "--app", target, *extra, "--scenarios", str(scenario), "--profiles", "uvicorn-1-sync")
    assert done.returncode == ExitCode.USAGE
    assert expected in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not _others_with(target)


@pytest.mark.e2e
def test_an_app_that_never_answers_its_health_route_is_bounded(tmp_path: Path) -> None:
    scenario = _scenario(tmp_path, 'health = "/health"\nhealth_timeout = 8\n[[burst]]\npath = "/"\n')
    started = time.monotonic()
    target = "tests.launcher.userapps.apps:no_health"
    done = _launch("probe", "--app", target, "--scenarios", str(scenario), "--profiles", "uvicorn-1-sync", "-q")
    assert done.returncode == ExitCode.USAGE
    assert time.monotonic() - started < 30
    line = done.stderr.strip()
    assert len(line.splitlines()) == 1, line
    assert "did not answer GET /health with 200 within 8 s" in line
    assert "last log lines:" in line
    assert not _others_with(target)


@pytest.mark.e2e
def test_a_scenario_route_that_is_a_404_is_one_line(tmp_path: Path) -> None:
    scenario = _scenario(tmp_path, '[[burst]]\npath = "/nope"\nn = 1\n')
    done = _launch("probe", "--app", GOOD.target, "--scenarios", str(scenario), "--profiles", "uvicorn-1-sync", "-q")
    assert done.returncode == ExitCode.USAGE
    assert done.stderr.strip() == (
        f"launch: error: {scenario}: burst[0].path = '/nope': GET /nope answered 404 under uvicorn-1-sync: "
        "no such route in the app"
    )
    assert not _others_with(GOOD.target)


@pytest.mark.e2e
def test_a_scenario_file_mistake_is_one_line(tmp_path: Path) -> None:
    scenario = _scenario(tmp_path, '[[burst]]\npath = "/hello"\nn = -1\n')
    done = _launch("probe", "--app", GOOD.target, "--scenarios", str(scenario), "--profiles", "uvicorn-1-sync")
    assert done.returncode == ExitCode.USAGE
    assert done.stderr.strip() == (
        f"launch: error: {scenario}: burst[0].n = -1: Input should be greater than or equal to 1"
    )


@pytest.mark.e2e
def test_a_systemd_unit_serves_the_user_app_from_an_absolute_folder() -> None:
    done = _launch("systemd", "--profile", "gunicorn-3-sync", "--app", "examples.shop:app", "--user")
    assert done.returncode == 0, done.stderr
    exec_start = next(line for line in done.stdout.splitlines() if line.startswith("ExecStart="))
    assert exec_start.endswith(f"--profile gunicorn-3-sync --app examples.shop:app --app-dir {ROOT}")
    refused = _launch("systemd", "--profile", "gunicorn-3-sync", "--app", "examples.shop:nope", "--user")
    assert refused.returncode == ExitCode.USAGE
    assert (
        refused.stderr.strip()
        == "launch: error: --app examples.shop:nope: module examples.shop has no attribute 'nope'"
    )


DEMO_SCENARIO = """
health_timeout = 120  # three workers each import Gradio: slow on a loaded 2-core machine

[[burst]]
path = "/predict"
n = 3

[[gradio]]
api_name = "/echo"
inputs = ["hi"]
n = 3
"""


@pytest.mark.e2e
def test_a_demo_under_a_sub_path_is_clicked_there_and_several_processes_never_qualify(tmp_path: Path) -> None:
    """The demo at /demo, as gr.mount_gradio_app(app, demo, path="/demo") puts it: found, clicked, judged."""
    result = tmp_path / "demo.json"
    done = _launch(
        "probe",
        "--app",
        "tests.launcher.userapps.demo_app:app",
        "--scenarios",
        str(_scenario(tmp_path, DEMO_SCENARIO)),
        "--profiles",
        "uvicorn-1-sync,gunicorn-3-sync",
        "--json",
        str(result),
        "--quiet",
        timeout=240,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    run = json.loads(result.read_text())
    assert run["demo_paths"] == ["/demo"]
    clicks = {p["profile"]: next(r for r in p["routes"] if r["route"] == "gradio /echo") for p in run["profiles"]}
    single = clicks["uvicorn-1-sync"]
    assert single["class"] != "fails", single
    assert all(v["failed"] == 0 for v in single["repeats"]), single
    recommendation = run["recommendation"]
    assert recommendation["profile"] == "uvicorn-1-sync"
    assert recommendation["tied_with"] == []
    assert "from 3 processes" in recommendation["rejected"]["gunicorn-3-sync"]
    assert not _others_with("demo_app:app")


@pytest.mark.e2e
def test_a_gradio_event_the_demo_does_not_have_is_one_line_before_any_server_starts(tmp_path: Path) -> None:
    scenario = _scenario(tmp_path, '[[gradio]]\napi_name = "/predict"\n')
    done = _launch(
        "probe",
        "--app",
        "tests.launcher.userapps.demo_app:app",
        "--scenarios",
        str(scenario),
        "--profiles",
        "uvicorn-1-sync",
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines == [
        f"launch: error: {scenario}: gradio[0].api_name = '/predict': the demo at /demo has no such event "
        "(its api names: /echo)"
    ]
