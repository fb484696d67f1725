"""`launch probe` end to end: real children, real bursts, real verdicts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import launcher.child
from launcher.cli import main
from launcher.errors import ExitCode
from launcher.probe import metrics
from launcher.probe.model import load_run

pytestmark = pytest.mark.e2e  # every test here starts real servers


def _scenario(run: dict[str, Any], profile: str, scenario: str) -> dict[str, Any]:
    for result in run["profiles"]:
        if result["profile"]["name"] == profile:
            for s in result["scenarios"]:
                if s["scenario"] == scenario:
                    found: dict[str, Any] = s
                    return found
    raise AssertionError(f"{profile}/{scenario} not in the run")


def test_probe_three_handler_modes(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    result = runner.invoke(
        main,
        [
            "probe",
            "--profiles",
            "uvicorn-1-sync,uvicorn-1-async,uvicorn-1-offload",
            "--seconds",
            "0.5",
            "--json",
            str(out),
            "--quiet",
        ],
    )
    assert result.exit_code == ExitCode.OK, result.output
    data = json.loads(out.read_text())
    assert data["schema"] == "launch.probe" and data["complete"] is True
    run = load_run(out.read_text())
    sleeps = {p: _scenario(data, p, "sleep") for p in ("uvicorn-1-sync", "uvicorn-1-async")}
    for name, expected in (("uvicorn-1-sync", 3), ("uvicorn-1-async", 1)):
        scenario = next(s for p in run.profiles if p.name == name for s in p.scenarios if s.scenario == "sleep")
        overlaps = metrics.overlap_by_pid(scenario.records)
        assert list(overlaps.values()) == [expected], (name, overlaps, sleeps[name]["verdicts"])
    assert [c["number"] for c in data["claims"]] == list(range(1, 13))
    assert data["recommendation"] is not None
    assert "Recommended:" in result.output and "the write-up's claims" in result.output


def test_probe_fails_when_the_declared_mode_lies(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A test-only profile declares async handlers; the server it starts runs sync ones.
    profiles = tmp_path / "liar.toml"
    profiles.write_text('[profiles.liar]\nextends = "uvicorn-1-async"\nmodel = "none"\n')
    real = launcher.child.launch_command

    def lying_command(*args: object, **kwargs: object) -> list[str]:
        argv = real(*args, **kwargs)  # type: ignore[arg-type]
        argv[argv.index("--mode") + 1] = "sync"
        return argv

    monkeypatch.setattr(launcher.child, "launch_command", lying_command)
    result = runner.invoke(
        main,
        [
            "--profiles-file",
            str(profiles),
            "probe",
            "--profiles",
            "liar",
            "--scenarios",
            "sleep,liveness",
            "-s",
            "0.5",
            "--details",
        ],
    )
    assert result.exit_code == ExitCode.EXPECTATION_FAILED, result.output
    failing = [line for line in result.output.splitlines() if "FAIL" in line]
    assert any("never overlaps" in line for line in failing), result.output


def test_probe_reports_a_profile_that_does_not_start(runner: CliRunner, tmp_path: Path) -> None:
    profiles = tmp_path / "broken.toml"
    profiles.write_text(f'[profiles.broken]\nextends = "uvicorn-1-sync"\nmodel = "{tmp_path / "no-such-model"}"\n')
    out = tmp_path / "r.json"
    result = runner.invoke(
        main,
        ["--profiles-file", str(profiles), "probe", "--profiles", "broken", "--json", str(out), "-q"],
    )
    assert result.exit_code == ExitCode.NOT_STARTED, result.output
    data = json.loads(out.read_text())
    (profile,) = data["profiles"]
    assert profile["status"] == "did_not_start"
    assert "no-such-model" in profile["log_tail"]
    assert data["recommendation"] is None


def test_timeout_scenarios_side_by_side_and_stops_beside_the_next_start() -> None:
    # Issue 14: the timeout scenarios are waits, fired together on fresh servers of their profiles once every
    # CPU-measuring burst is done; a stop overlaps the next start only; all of it is recorded.
    from launcher.probe.runner import run_probe
    from launcher.probe.scenarios import ProbeOptions, ProfileTarget
    from tests.conftest import builtin

    names = ("gunicorn-1-async", "gunicorn-1-sync", "uvicorn-1-sync", "hypercorn-1-sync")
    targets = [ProfileTarget(profile=builtin(name, model="none", timeout=2)) for name in names]
    run = run_probe(targets, ProbeOptions(scenarios=("sleep", "timeout", "liveness"), repeat=1, seconds=0.3))
    assert [p.name for p in run.profiles] == list(names), "results keep the order profiles were probed in"
    by_name = {p.name: p for p in run.profiles}
    timeouts = {n: next(s for s in by_name[n].scenarios if s.scenario == "timeout") for n in names[:2]}
    first, second = timeouts[names[0]], timeouts[names[1]]
    assert first.overlapped_with == (f"timeout:{names[1]}",) and second.overlapped_with == (f"timeout:{names[0]}",)
    assert first.started_ns < second.finished_ns and second.started_ns < first.finished_ns, "not side by side"
    assert all(s.note.startswith("own server") for s in timeouts.values())
    # Every CPU-measuring burst ran alone, before any timeout scenario.
    bursts = [s for p in run.profiles for s in p.scenarios if s.scenario != "timeout"]
    assert max(s.finished_ns for s in bursts) < min(first.started_ns, second.started_ns)
    assert all(s.overlapped_with == () for s in bursts)
    # A stop measures nothing: the next profile starts while it runs (recorded), its bursts wait for it.
    assert by_name["hypercorn-1-sync"].start_overlapped_with == ("stop:uvicorn-1-sync",)
    assert by_name["gunicorn-1-async"].start_overlapped_with == ()
    # The verdicts are the same as on the first server: the async worker is killed, the sync sleep completes.
    assert all(v.passed for s in timeouts.values() for v in s.verdicts), [s.verdicts for s in timeouts.values()]
    # One kill, and no second: the probe's client never resends the blocking request to the replacement worker
    # (issue 24: aiohttp's silent retry made a second WORKER TIMEOUT and doubled the scenario).
    killed = [e for e in first.log_events if e.kind == "worker_timeout"]
    assert len(killed) == 1, first.log_events
    assert [r.error for r in first.records if r.kind == "api"] == ["disconnected"]
    assert all(p.status == "ok" and not p.stop_forced for p in run.profiles)
