"""``launch probe --target-rate`` end to end: fit profiles held at the rate for real, the decision, exit 9."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from launcher.capacity.model import KEEP_UP
from launcher.cli import main
from launcher.errors import ExitCode

REPO = Path(__file__).resolve().parents[3]
SHOP_TOML = str(REPO / "examples" / "shop.toml")
STUDIO_TOML = str(REPO / "examples" / "studio.toml")
SLEEP_S = 0.1
"""Each request's sleep: one offload worker (limiter 1) serves at most 1 / 0.1 s = 10 of them a second."""


def _probe(*args: str, out: Path) -> subprocess.CompletedProcess[str]:
    argv = [
        sys.executable, "-m", "launcher", "probe", "--scenarios", "sleep,mixed,liveness", "-r", "1", "-s", "0.2",
        "--route", f"/test1?seconds={SLEEP_S}", "--p99", "1s", "--json", str(out), *args,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO), "GRADIO_ANALYTICS_ENABLED": "False", "COLUMNS": "200"}
    return subprocess.run(argv, capture_output=True, text=True, timeout=400, env=env, cwd=REPO, check=False)


@pytest.mark.e2e
def test_the_simplest_fit_profile_that_carries_the_rate_is_recommended(tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    done = _probe("--profiles", "uvicorn-1-offload,uvicorn-1-sync", "--target-rate", "14/s", out=out)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["schema_version"] == 4
    load = data["load"]
    assert (load["rate"], load["route"], load["p99_s"]) == (14.0, f"/test1?seconds={SLEEP_S}", 1.0)
    checks = {c["profile"]: c for c in load["checks"]}
    assert set(checks) == {"uvicorn-1-offload", "uvicorn-1-sync"}, load
    # The offload profile runs one sleep at a time (limiter 1): it answers at most 10/s whatever the machine's
    # spread, and a 5 s step of the knee search passes only if answers keep up with 0.9x its rate.
    offload = checks["uvicorn-1-offload"]
    assert not offload["carried"], offload
    assert offload["knee"] is not None and offload["knee"] <= 1 / SLEEP_S / KEEP_UP, offload
    # The sync profile sleeps in a thread pool of 40: 14/s of 0.1 s sleeps is 1.4 at a time.
    sync = checks["uvicorn-1-sync"]
    assert sync["carried"], sync
    assert sync["requests"] >= 50 and sync["seconds"] >= 20 and sync["errors"] == 0
    assert sync["demo_clicks"] >= 4 and sync["demo_failures"] == 0
    assert sync["knee"] is not None and sync["knee"] >= 14
    assert load["chosen"] == "uvicorn-1-sync"
    assert "Recommended for 14/s: uvicorn-1-sync" in done.stdout
    assert "uvicorn-1-offload: does not carry 14/s" in done.stdout


@pytest.mark.e2e
def test_no_fit_profile_carrying_the_rate_is_exit_9_with_the_closest_knee(tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    done = _probe("--profiles", "uvicorn-1-offload", "--target-rate", "20/s", out=out)
    assert done.returncode == ExitCode.TARGET_NOT_CARRIED, done.stdout[-3000:] + done.stderr[-3000:]
    load = json.loads(out.read_text())["load"]
    assert load["chosen"] is None
    (offload,) = load["checks"]
    assert not offload["carried"] and offload["knee"] is not None and offload["knee"] <= 1 / SLEEP_S / KEEP_UP
    assert "closest: uvicorn-1-offload" in load["why"] and "a split profile with workers =" in load["why"]
    assert "No fit profile carries the target" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target-rate", "5/day"], "unreadable rate '5/day'"),
        (["--target-rate", "5/s", "--p99", "soon"], "unreadable duration 'soon'"),
        (["--target-rate", "5/s", "--route", "/admin"], "--route '/admin': expected one of"),
        (["--route", "/test1"], "--route and --p99 go with --target-rate RATE"),
        (
            ["--target-rate", "5/s", "--app", "examples.shop:app", "--scenarios", SHOP_TOML],
            "--target-rate with --app needs --route PATH",
        ),
        (["--target-rate", "5/s", "--claims"], "--target-rate does not go with --claims"),
        (
            ["--target-rate", "5/s", "--route", "nope", "--app", "examples.shop:app", "--scenarios", SHOP_TOML],
            "expected a path of the app",
        ),
    ],
)
def test_a_target_it_cannot_use_is_one_line_with_exit_2_before_any_start(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["probe", "--profiles", "uvicorn-1-offload", *args])
    assert result.exit_code == ExitCode.USAGE, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1, result.output


def _probe_app(*args: str, out: Path) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "launcher", "probe", "--p99", "1s", "--json", str(out), *args]
    env = {**os.environ, "PYTHONPATH": str(REPO), "GRADIO_ANALYTICS_ENABLED": "False", "COLUMNS": "200"}
    return subprocess.run(argv, capture_output=True, text=True, timeout=400, env=env, cwd=REPO, check=False)


@pytest.mark.e2e
def test_a_users_app_is_held_at_its_rate_with_its_demo_clicked_at_its_mount_path(tmp_path: Path) -> None:
    """examples/studio.py mounts its demo at /demo: the hold clicks the scenario file's event there. The target is
    the scenario file's [target], the command line's --p99 overriding its p99."""
    out = tmp_path / "studio.json"
    scenario = tmp_path / "studio.toml"
    scenario.write_text(
        Path(STUDIO_TOML).read_text() + '\n[target]\nrate = "5/s"\nroute = "/caption?seconds=0.05"\np99 = "3s"\n'
    )
    done = _probe_app(
        "--app", "examples.studio:app", "--scenarios", str(scenario), "--profiles", "uvicorn-1-sync",
        "--html", str(tmp_path / "studio.html"), out=out,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    page = (tmp_path / "studio.html").read_text()
    assert "Load: 5/s of /caption?seconds=0.05" in page and "Recommended for 5/s: uvicorn-1-sync" in page
    data = json.loads(out.read_text())
    assert (data["schema"], data["schema_version"]) == ("launch.appprobe", 2)
    load = data["load"]
    assert (load["rate"], load["route"], load["p99_s"]) == (5.0, "/caption?seconds=0.05", 1.0)
    (check,) = load["checks"]
    # 5/s of 50 ms sleeps in a thread pool of 40 is a quarter of one thread: carried on any machine that runs it.
    assert check["profile"] == "uvicorn-1-sync" and check["carried"], check
    assert check["requests"] >= 50 and check["seconds"] >= 20 and check["errors"] == 0
    assert check["demo_clicks"] >= 4 and check["demo_failures"] == 0, check
    assert check["knee"] is not None and check["knee"] >= 5
    assert load["chosen"] == "uvicorn-1-sync"
    assert "Recommended for 5/s: uvicorn-1-sync" in done.stdout


@pytest.mark.e2e
def test_a_users_app_that_no_fit_profile_carries_is_exit_9(tmp_path: Path) -> None:
    """An ``async def`` route that calls time.sleep runs one request at a time per process: 0.3 s each is at
    most 3.3/s on one worker, whatever the machine, so 10/s is not carried."""
    scenario = tmp_path / "blocking.toml"
    scenario.write_text(
        'health = "/health"\n\n[[burst]]\nname = "lookup-blocking"\npath = "/lookup-blocking"\n'
        "query = { seconds = 0.3 }\nn = 2\n"
    )
    out = tmp_path / "shop.json"
    done = _probe_app(
        "--app", "examples.shop:app", "--scenarios", str(scenario), "--profiles", "uvicorn-1-sync",
        "--target-rate", "10/s", "--route", "/lookup-blocking?seconds=0.3", out=out,
    )  # fmt: skip
    assert done.returncode == ExitCode.TARGET_NOT_CARRIED, done.stdout[-3000:] + done.stderr[-3000:]
    load = json.loads(out.read_text())["load"]
    (check,) = load["checks"]
    assert not check["carried"] and load["chosen"] is None
    assert check["demo_clicks"] == 0  # the scenario file names no demo event
    assert check["knee"] is None or check["knee"] <= 1 / 0.3 / KEEP_UP, check
    assert "No fit profile carries the target" in done.stdout


@pytest.mark.e2e
def test_a_route_the_app_does_not_serve_is_one_line_with_exit_2_before_any_start(tmp_path: Path) -> None:
    out = tmp_path / "nope.json"
    done = _probe_app(
        "--app", "examples.shop:app", "--scenarios", SHOP_TOML, "--profiles", "uvicorn-1-sync",
        "--target-rate", "5/s", "--route", "/nope", out=out,
    )  # fmt: skip
    assert done.returncode == ExitCode.USAGE, done.stdout[-3000:] + done.stderr[-3000:]
    (line,) = done.stderr.strip().splitlines()
    assert "--route /nope: examples.shop:app has no route /nope (its routes: /health, /lookup-blocking" in line
    assert not out.exists()


@pytest.mark.e2e
def test_a_route_a_bare_app_does_not_serve_is_exit_2_at_the_hold_and_the_probe_is_kept(tmp_path: Path) -> None:
    """A bare ASGI callable lists no routes, so only its answers can tell: all 404 at the hold is exit 2, one line,
    and the probe's own results (measured before) are written all the same."""
    scenario = tmp_path / "bare.toml"
    scenario.write_text('health = "/hello"\n\n[[burst]]\npath = "/hello"\nn = 2\n')
    out = tmp_path / "bare.json"
    done = _probe_app(
        "--app", "tests.launcher.userapps.apps:bare", "--scenarios", str(scenario), "--profiles", "uvicorn-1-sync",
        "--target-rate", "4/s", "--route", "/nope", "-q", out=out,
    )  # fmt: skip
    assert done.returncode == ExitCode.USAGE, done.stdout[-3000:] + done.stderr[-3000:]
    (line,) = done.stderr.strip().splitlines()
    assert "--route /nope: uvicorn-1-sync answered HTTP 404 to GET /nope" in line
    assert f"the probe's results written to {out}" in line
    data = json.loads(out.read_text())
    assert data["load"] is None and [r["route"] for r in data["profiles"][0]["routes"]] == ["GET /hello"]
