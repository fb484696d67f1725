"""``launch capacity`` end to end: a real profile, real load, a knee found; and its usage errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from launcher.cli import main

REPO = Path(__file__).resolve().parents[3]
SLEEP_S = 0.05


@pytest.mark.e2e
def test_capacity_finds_the_knee_of_one_offload_worker(tmp_path: Path) -> None:
    out, page = tmp_path / "cap.json", tmp_path / "cap.html"
    argv = [
        sys.executable, "-m", "launcher", "capacity",
        "--profiles", "uvicorn-1-offload", "--model", "none",
        "--route", f"/test1?seconds={SLEEP_S}", "--p99", "0.5s",
        "--step-seconds", "1", "--start-rate", "4/s", "--bisections", "3",
        "--target-rate", "50/s", "--json", str(out), "--html", str(page),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO), "GRADIO_ANALYTICS_ENABLED": "False"}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=240, env=env, cwd=REPO, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    data = json.loads(out.read_text())
    assert (data["schema"], data["schema_version"], data["complete"]) == ("launch.capacity", 1, True)
    (profile,) = data["profiles"]
    # One worker, limiter 1: one 50 ms sleep at a time, so at most 20/s are served;
    # a step is sustained only if answers keep up with 0.9x its rate.
    assert profile["knee"] is not None
    assert 4 <= profile["knee"] <= 1 / SLEEP_S / 0.9
    rates = [s["rate"] for s in profile["steps"]]
    assert rates[:4] == [4, 8, 16, 32]  # the geometric ramp, then bisection
    assert any(not s["passed"] for s in profile["steps"])
    at_knee = next(s for s in profile["steps"] if s["rate"] == profile["knee"])
    assert at_knee["p99_s"] <= 0.5 and at_knee["errors"] == 0
    (busy,) = at_knee["utilisation"].values()  # the server's own work intervals, one worker
    assert busy >= 0.9 * profile["knee"] * SLEEP_S
    assert data["sizing"]["workers_needed"] >= 3
    assert "knee" in done.stdout and "Sizing:" in done.stdout and "no GPU" in done.stdout
    html = page.read_text()
    assert "<svg" in html and "<script" not in html


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--p99", "soon"], "unreadable duration"),
        (["--route", "/admin"], "--route '/admin': expected one of"),
        (["--target-rate", "5/day"], "unreadable rate"),
        (["--start-rate", "50/s", "--max-rate", "10/s"], "--start-rate/--max-rate"),
        (["--profiles", "nope"], "nope"),
    ],
)
def test_capacity_usage_errors_are_one_line_with_exit_2(args: list[str], message: str) -> None:
    base = {"--profiles": "uvicorn-1-offload"}
    flat = [x for k, v in base.items() if k not in args for x in (k, v)] + args
    result = CliRunner().invoke(main, ["capacity", *flat])
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1


def _capacity(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "GRADIO_ANALYTICS_ENABLED": "False"}
    argv = [sys.executable, "-m", "launcher", "capacity", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO, check=False)


@pytest.mark.e2e
def test_capacity_finds_the_knee_of_a_users_app(tmp_path: Path) -> None:
    # examples/shop.py's /lookup-blocking: async def + time.sleep, so its one worker serves one call at a time.
    out = tmp_path / "cap.json"
    done = _capacity(
        "--app", "examples.shop:app", "--profiles", "uvicorn-1-sync",
        "--route", f"/lookup-blocking?seconds={SLEEP_S}", "--p99", "0.5s",
        "--step-seconds", "1", "--start-rate", "4/s", "--bisections", "2", "--json", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["options"]["app"] == "examples.shop:app"
    assert data["options"]["route"] == f"/lookup-blocking?seconds={SLEEP_S}"
    (profile,) = data["profiles"]
    assert profile["status"] == "ok"
    # The event loop is blocked for each call: at most 1 / 50 ms = 20/s, served or not.
    assert profile["knee"] is not None and 4 <= profile["knee"] <= 1 / SLEEP_S / 0.9, profile["steps"]
    assert any(not s["passed"] for s in profile["steps"])
    # The app's work intervals come from the launcher's attribution headers (the app's body has none).
    at_knee = next(s for s in profile["steps"] if s["rate"] == profile["knee"])
    (busy,) = at_knee["utilisation"].values()
    assert busy >= 0.9 * profile["knee"] * SLEEP_S, at_knee
    assert "knee" in done.stdout


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("app", "route", "message"),
    [
        # The app lists its routes: refused before any server starts.
        ("examples.shop:app", "/nope", "--route /nope: examples.shop:app has no route /nope (its routes: /health,"),
        ("examples.shop:app", "/lookup-blocking/x", "has no route /lookup-blocking/x"),
        # A bare ASGI callable lists none: its first answers tell.
        ("tests.launcher.userapps.apps:bare", "/nope", "uvicorn-1-sync answered HTTP 404 to GET /nope"),
    ],
)
def test_capacity_of_a_route_the_app_does_not_serve_is_one_line_with_exit_2(
    app: str, route: str, message: str, tmp_path: Path
) -> None:
    out = tmp_path / "cap.json"
    done = _capacity(
        "--app", app, "--profiles", "uvicorn-1-sync", "--route", route, "--step-seconds", "1", "-q", "--json", str(out)
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines() == [done.stderr.strip()], done.stderr
    assert done.stderr.startswith("launch: error: ") and message in done.stderr, done.stderr
    assert not out.exists()


def test_capacity_with_app_needs_a_route() -> None:
    result = CliRunner().invoke(main, ["capacity", "--profiles", "uvicorn-1-sync", "--app", "examples.shop:app"])
    assert result.exit_code == 2, result.output
    assert result.output.strip() == "launch: error: --app needs --route PATH: the route of your app to load"
