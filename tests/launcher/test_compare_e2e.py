"""launch compare end to end: real probes of examples/shop.py, real servers, real HTTP, no mocks.

Three probes of the shop under one profile, shared by every test of the module: the base run, the same app
again (``--baseline`` the base), and a copy with lookup-threaded turned from ``def`` + ``time.sleep`` into
``async def`` + ``time.sleep`` (``--baseline`` the base). The scenario file holds two routes (the one that
changes, and one that does not), fired 2 x 4 at once: what the verdicts need, and little more.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = """\
health = "/health"

[[burst]]
name = "lookup-threaded"
path = "/lookup-threaded"
query = { seconds = 0.5 }
n = 4
repeats = 2

[[burst]]
name = "lookup-async"
path = "/lookup-async"
query = { seconds = 0.5 }
n = 4
repeats = 2
"""


def _launch(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "launcher", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"},
        check=False,
    )


@dataclass(frozen=True)
class Probed:
    path: Path
    done: subprocess.CompletedProcess[str]
    seconds: float


@dataclass(frozen=True)
class ShopRuns:
    base: Probed
    same: Probed
    changed: Probed


def _probe(app: str, scenarios: Path, out: Path, *extra: str) -> Probed:
    started = time.monotonic()
    done = _launch(
        "probe", "--app", app, "--scenarios", str(scenarios), "--profiles", "uvicorn-1-sync", "--json", str(out),
        "--quiet", *extra,
    )  # fmt: skip
    return Probed(path=out, done=done, seconds=time.monotonic() - started)


@pytest.fixture(scope="module")
def shop_runs(tmp_path_factory: pytest.TempPathFactory) -> ShopRuns:
    folder = tmp_path_factory.mktemp("compare")
    scenarios = folder / "shop.toml"
    scenarios.write_text(SCENARIOS)
    changed = folder / "changed"
    changed.mkdir()
    source = (ROOT / "examples" / "shop.py").read_text()
    assert source.count("\ndef lookup_threaded(") == 1
    (changed / "shop.py").write_text(source.replace("\ndef lookup_threaded(", "\nasync def lookup_threaded("))
    base = _probe("examples.shop:app", scenarios, folder / "base.json")
    assert base.done.returncode == 0, base.done.stderr + base.done.stdout
    same = _probe("examples.shop:app", scenarios, folder / "same.json", "--baseline", str(base.path))
    after = _probe(
        "shop:app", scenarios, folder / "changed.json", "--app-dir", str(changed), "--baseline", str(base.path)
    )
    print(f"probe seconds: base {base.seconds:.1f}, same {same.seconds:.1f}, changed {after.seconds:.1f}")
    return ShopRuns(base=base, same=same, changed=after)


@pytest.mark.e2e
def test_the_unchanged_app_compares_with_exit_0_and_nothing_changed(shop_runs: ShopRuns) -> None:
    done = shop_runs.same.done
    assert done.returncode == 0, done.stderr + done.stdout
    assert "verdict changes: none" in done.stdout
    assert "figures: 0 changed, 2 same within noise (rule: medians within max(" in done.stdout
    assert "unchanged (1 of 1 profiles): uvicorn-1-sync" in done.stdout
    again = _launch("compare", str(shop_runs.base.path), str(shop_runs.same.path), "--json")
    assert again.returncode == 0, again.stderr
    data = json.loads(again.stdout)
    assert data["changes"] == [] and all(f["direction"] is None for f in data["figures"])


@pytest.mark.e2e
def test_a_route_turned_async_with_a_blocking_sleep_is_a_regression_exit_1(shop_runs: ShopRuns) -> None:
    done = shop_runs.changed.done
    assert done.returncode == 1, done.stderr + done.stdout
    line = next(line for line in done.stdout.splitlines() if "route lookup-threaded " in line)
    assert "REGRESSION" in line and "runs_concurrently" in line and "blocks_event_loop" in line
    assert done.stdout.rstrip().endswith("exit 1")
    again = _launch("compare", str(shop_runs.base.path), str(shop_runs.changed.path), "--json")
    assert again.returncode == 1, again.stderr
    data = json.loads(again.stdout)
    regressions = [c for c in data["changes"] if c["direction"] == "regression"]
    assert [(c["profile"], c["subject"], c["base"], c["new"]) for c in regressions] == [
        ("uvicorn-1-sync", "route lookup-threaded", "runs_concurrently", "blocks_event_loop")
    ]
    # The route that did not change is not called changed.
    untouched = next(f for f in data["figures"] if f["subject"] == "route lookup-async makespan")
    assert untouched["direction"] is None
