"""launch compare without a server: the noise rule, every verdict, the refusals, the exit codes, the output.

Built from real result files: a probe result (tests/launcher/probe/data/run-v1.json), and two app probe
results of examples/shop.py under uvicorn-1-sync (data/shop-base.json; data/shop-async-threaded.json, the
same app with lookup-threaded turned from def + time.sleep into async def + time.sleep).
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from launcher.capacity.model import CapacityRun, ProfileCapacity, Sizing, StepResult
from launcher.capacity.model import dump_run as dump_capacity
from launcher.cli import main
from launcher.compare.load import Loaded, read, read_pair
from launcher.compare.model import Direction, FailOn, NotComparableError, ResultKind, judge_figure
from launcher.compare.render import dump, html_page
from launcher.compare.rules import KNEE_RULE, compare, knee_figure
from launcher.errors import ExitCode
from launcher.probe.appprobe import SCHEMA_VERSION as APP_SCHEMA_VERSION
from launcher.probe.appprobe import run_from_json as app_from_json
from launcher.probe.appprobe import run_to_json as app_to_json
from launcher.probe.metrics import NOISE_FLOOR_S, TIE_REL, within_noise
from launcher.probe.model import Figure, Liveness, ProbeRun, ResultFileError, Status
from profiles.model import Profile

DATA = Path(__file__).parent / "data"
PROBE = Path(__file__).parents[1] / "probe" / "data" / "run-v1.json"
SHOP = DATA / "shop-base.json"
SHOP_ASYNC = DATA / "shop-async-threaded.json"


def fig(*samples: float) -> Figure:
    return Figure(median=statistics.median(samples), low=min(samples), high=max(samples), samples=len(samples))


# --- the noise rule ----------------------------------------------------------------------


def test_identical_samples_are_the_same_within_noise() -> None:
    assert within_noise(fig(1.0, 1.0), fig(1.0, 1.0))
    assert judge_figure("p", "x", "s", fig(0.3, 0.31), fig(0.3, 0.31)).direction is None


def test_shifted_samples_beyond_the_spreads_and_the_floor_are_a_change() -> None:
    base, shifted = fig(1.00, 1.02), fig(1.30, 1.32)
    assert not within_noise(base, shifted)
    assert judge_figure("p", "x", "s", base, shifted).direction == Direction.REGRESSION
    assert judge_figure("p", "x", "s", shifted, base).direction == Direction.IMPROVEMENT
    # A knee: higher is better.
    assert judge_figure("p", "knee", "/s", base, shifted, higher_is_better=True).direction == Direction.IMPROVEMENT


def test_overlapping_spreads_are_the_same_within_noise() -> None:
    # Medians 0.3 apart, but one run's own repeats spread over 0.5: within its noise.
    assert within_noise(fig(1.0, 1.5), fig(1.5, 1.6))
    # Without that spread, the same shift is outside the noise.
    assert not within_noise(fig(1.2, 1.2), fig(1.55, 1.55))


def test_the_floor_is_tie_rel_of_the_smaller_median() -> None:
    assert within_noise(fig(10.0), fig(10.0 * (1 + TIE_REL * 0.99)))
    assert not within_noise(fig(10.0), fig(10.0 * (1 + TIE_REL * 1.01)))


def test_durations_closer_than_the_floor_are_the_same_and_rates_have_no_floor() -> None:
    # A route that answers in 8 ms, then 9 ms: 12 % apart, but one millisecond of a busy machine's jitter.
    assert within_noise(fig(0.008), fig(0.009))
    assert judge_figure("p", "route broken makespan", "s", fig(0.008), fig(0.009)).direction is None
    assert not within_noise(fig(0.008), fig(0.008 + NOISE_FLOOR_S * 1.01))
    assert not within_noise(fig(0.008), fig(0.009), duration=False)
    knee = judge_figure("p", "knee", "/s", fig(0.8), fig(0.9), higher_is_better=True)
    assert knee.direction == Direction.IMPROVEMENT


positive = st.floats(min_value=0.01, max_value=100, allow_nan=False)


@given(st.lists(positive, min_size=1, max_size=5), st.lists(positive, min_size=1, max_size=5))
def test_the_rule_is_symmetric(a: list[float], b: list[float]) -> None:
    assert within_noise(fig(*a), fig(*b)) == within_noise(fig(*b), fig(*a))


@given(st.lists(positive, min_size=1, max_size=5), st.floats(min_value=0, max_value=50))
def test_a_shift_within_the_spread_is_never_a_change_and_far_beyond_always_one(a: list[float], k: float) -> None:
    base = fig(*a)
    shift = 0.999 * base.spread  # a hair under it: float sums of a spread are not exact
    inside = Figure(median=base.median + shift, low=base.low + shift, high=base.high + shift, samples=base.samples)
    assert within_noise(base, inside)
    far = 2 * max(base.spread, TIE_REL * base.median, NOISE_FLOOR_S) + k + 0.01
    moved = Figure(median=base.median + far, low=base.median + far, high=base.median + far, samples=1)
    assert not within_noise(base, moved)


# --- app probe results (the user's app) -----------------------------------------------------


def test_a_route_that_starts_blocking_the_loop_is_a_regression_exit_1() -> None:
    comparison = compare(*read_pair(SHOP, SHOP_ASYNC))
    assert comparison.kind == ResultKind.APP
    [change] = comparison.changes
    assert (change.direction, change.profile, change.subject) == (
        Direction.REGRESSION,
        "uvicorn-1-sync",
        "route lookup-threaded",
    )
    assert (change.base, change.new) == ("runs_concurrently", "blocks_event_loop")
    assert "ms stall" in change.why
    assert comparison.exit_code(FailOn.VERDICT) == int(ExitCode.EXPECTATION_FAILED)
    # The blocked route is slower too, far outside its noise; the untouched route is the same within noise.
    [slower] = comparison.figure_changes
    assert slower.subject == "route lookup-threaded makespan" and slower.direction == Direction.REGRESSION
    assert comparison.unchanged_profiles == ()


def test_the_reverse_is_an_improvement_exit_0_unless_any_change_fails() -> None:
    comparison = compare(*read_pair(SHOP_ASYNC, SHOP))
    assert [c.direction for c in comparison.changes] == [Direction.IMPROVEMENT]
    assert comparison.exit_code(FailOn.VERDICT) == 0
    assert comparison.exit_code(FailOn.FIGURE) == 0
    assert comparison.exit_code(FailOn.ANY) == 1


def test_a_run_compared_with_itself_changes_nothing() -> None:
    comparison = compare(*read_pair(SHOP, SHOP))
    assert comparison.changes == () and comparison.figure_changes == ()
    assert len(comparison.figures) == 2 and comparison.unchanged_profiles == ("uvicorn-1-sync",)
    assert all(comparison.exit_code(level) == 0 for level in FailOn)


def _write(tmp_path: Path, name: str, data: dict[str, Any]) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_an_app_result_without_a_header_is_read_and_said_so(tmp_path: Path) -> None:
    data = json.loads(SHOP.read_text())
    for key in ("schema", "schema_version", "created", "machine", "demo_paths"):
        data.pop(key)
    for route in data["profiles"][0]["routes"]:
        route.pop("n")
    old = _write(tmp_path, "old.json", data)
    loaded = read(old)
    assert (loaded.kind, loaded.version) == (ResultKind.APP, 0)
    comparison = compare(*read_pair(old, SHOP_ASYNC))
    assert any("no schema header" in note for note in comparison.notes)
    assert comparison.exit_code(FailOn.VERDICT) == 1


def test_a_different_burst_size_is_not_comparable(tmp_path: Path) -> None:
    data = json.loads(SHOP_ASYNC.read_text())
    data["profiles"][0]["routes"][0]["n"] = 8
    with pytest.raises(NotComparableError, match="n 4 != 8"):
        compare(*read_pair(SHOP, _write(tmp_path, "n8.json", data)))


def test_routes_and_profiles_of_one_run_only_are_listed(tmp_path: Path) -> None:
    data = json.loads(SHOP_ASYNC.read_text())
    data["profiles"][0]["routes"][1]["route"] = "lookup-new"
    extra = json.loads(json.dumps(data["profiles"][0]))
    extra["profile"] = "gunicorn-3-sync"
    data["profiles"].append(extra)
    comparison = compare(*read_pair(SHOP, _write(tmp_path, "more.json", data)))
    assert comparison.only_in_base == ("uvicorn-1-sync: route lookup-async",)
    assert comparison.only_in_new == ("gunicorn-3-sync", "uvicorn-1-sync: route lookup-new")


def test_the_app_result_round_trips() -> None:
    """A file of version 1 loads with every field it had, and what this launch writes reads back unchanged."""
    old = json.loads(SHOP.read_text())
    written = json.loads(json.dumps(app_to_json(read(SHOP).run)))  # type: ignore[arg-type]
    assert (old["schema_version"], written["schema_version"]) == (1, APP_SCHEMA_VERSION)
    for before, after in zip(old["profiles"], written["profiles"], strict=True):
        assert before == {k: v for k, v in after.items() if k != "server_processes"}
        assert after["server_processes"] == 0  # not recorded in version 1
    assert old["recommendation"] == {k: v for k, v in written["recommendation"].items() if k != "rule"}
    assert json.loads(json.dumps(app_to_json(app_from_json(written)))) == written


# --- refusals: one line, exit 2 ---------------------------------------------------------------


def _capacity(knee: float | None, *, miss: float | None = None, target_rate: float | None = None) -> CapacityRun:
    steps = [StepResult(rate=knee, seconds=1, scheduled=1, sent=1, ok=1, errors=0, passed=True)] if knee else []
    if miss is not None:
        steps.append(StepResult(rate=miss, seconds=1, scheduled=1, sent=1, ok=1, errors=0, passed=False))
    profile = ProfileCapacity(
        profile=Profile(name="uvicorn-1-offload", backend="uvicorn", mode="offload", workers=1),
        source=None,
        status=Status.OK,
        steps=tuple(steps),
        knee=knee,
    )
    return CapacityRun(
        created="2026-01-01T00:00:00+00:00",
        machine={"cores": 2, "gpu": None},
        options={"route": "/test1?seconds=0.025", "p99_target_s": 0.5, "step_seconds": 1, "target_rate": target_rate},
        profiles=(profile,),
    )


def test_a_probe_result_and_a_capacity_result_are_not_comparable(tmp_path: Path) -> None:
    cap = tmp_path / "cap.json"
    cap.write_text(dump_capacity(_capacity(10.0)))
    with pytest.raises(NotComparableError, match=r"is a launch probe result and .* a launch capacity result"):
        read_pair(PROBE, cap)
    result = CliRunner().invoke(main, ["compare", str(PROBE), str(cap)])
    assert result.exit_code == int(ExitCode.USAGE)
    assert result.output.count("\n") == 1 and "not comparable" in result.output


def test_a_newer_schema_is_one_line_and_exit_2(tmp_path: Path) -> None:
    for source, name in ((PROBE, "probe"), (SHOP, "app")):
        data = json.loads(source.read_text())
        data["schema_version"] = 99
        newer = _write(tmp_path, f"{name}.json", data)
        with pytest.raises(ResultFileError, match="newer than this launch"):
            read(newer)
        result = CliRunner().invoke(main, ["compare", str(source), str(newer)])
        assert result.exit_code == 2, result.output
        assert result.output.count("\n") == 1 and "schema_version 99 is newer" in result.output


def test_other_options_are_not_comparable(tmp_path: Path) -> None:
    data = json.loads(PROBE.read_text())
    data["options"]["requests"] = 5
    with pytest.raises(NotComparableError, match="option requests 3 != 5"):
        compare(*read_pair(PROBE, _write(tmp_path, "n5.json", data)))


def test_another_machine_is_refused_unless_allowed_and_then_marked(tmp_path: Path) -> None:
    data = json.loads(PROBE.read_text())
    data["machine"]["cores"] = 8
    other = _write(tmp_path, "other.json", data)
    with pytest.raises(NotComparableError, match="different machines \\(cores 2 != 8\\)"):
        compare(*read_pair(PROBE, other))
    comparison = compare(*read_pair(PROBE, other), allow_different_machine=True)
    assert comparison.different_machine and "DIFFERENT MACHINES" in comparison.notes[0]
    result = CliRunner().invoke(main, ["compare", str(PROBE), str(other), "--allow-different-machine"])
    assert result.exit_code == 0 and "DIFFERENT MACHINES" in result.output


def test_a_version_change_is_noted_not_refused(tmp_path: Path) -> None:
    data = json.loads(PROBE.read_text())
    data["machine"]["versions"]["uvicorn"] = "0.99.0"
    comparison = compare(*read_pair(PROBE, _write(tmp_path, "v.json", data)))
    assert "versions changed: uvicorn 0.54.0 -> 0.99.0" in comparison.notes


# --- probe results (the reference service) ------------------------------------------------------


def _probe_pair(change: Any) -> tuple[Loaded, Loaded]:
    base = read(PROBE)
    assert isinstance(base.run, ProbeRun)
    new = dataclasses.replace(base, path="new.json", run=change(base.run))
    return base, new


def _with_profile(run: ProbeRun, name: str, **assessment: Any) -> ProbeRun:
    profiles = tuple(
        dataclasses.replace(p, assessment=dataclasses.replace(p.assessment, **assessment))
        if p.name == name and p.assessment is not None
        else p
        for p in run.profiles
    )
    return dataclasses.replace(run, profiles=profiles)


def test_the_probe_files_verdicts_and_figures_match_themselves() -> None:
    comparison = compare(*_probe_pair(lambda run: run))
    assert comparison.changes == () and comparison.figures
    assert comparison.unchanged_profiles == ("uvicorn-1-sync", "gunicorn-3-sync", "hypercorn-1-sync")


def test_fit_to_unfit_and_worse_liveness_are_regressions() -> None:
    read_back = read(PROBE)
    assert isinstance(read_back.run, ProbeRun)
    name = "uvicorn-1-sync"  # as predicted, liveness fast; made fit for the base run
    base = dataclasses.replace(read_back, run=_with_profile(read_back.run, name, fit=True, unfit=()))
    assert isinstance(base.run, ProbeRun)
    new = dataclasses.replace(
        base,
        path="new.json",
        run=_with_profile(
            base.run, name, fit=False, unfit=("liveness blocked: /health waited",), liveness=Liveness.BLOCKED
        ),
    )
    comparison = compare(base, new)
    found = {(c.profile, c.subject): c for c in comparison.changes}
    assert found[(name, "fit")].direction == Direction.REGRESSION
    assert found[(name, "fit")].why == "liveness blocked: /health waited"
    assert (found[(name, "liveness")].base, found[(name, "liveness")].new) == ("fast", "blocked")
    assert comparison.exit_code(FailOn.VERDICT) == 1
    back = compare(new, base)
    assert {c.direction for c in back.changes} == {Direction.IMPROVEMENT}
    assert back.exit_code(FailOn.VERDICT) == 0


def test_a_profile_that_no_longer_starts_is_a_regression() -> None:
    def died(run: ProbeRun) -> ProbeRun:
        first = dataclasses.replace(run.profiles[0], status=Status.DID_NOT_START, error="port in use")
        return dataclasses.replace(run, profiles=(first, *run.profiles[1:]))

    comparison = compare(*_probe_pair(died))
    status = next(c for c in comparison.changes if c.subject == "status")
    assert (status.direction, status.new, status.why) == (Direction.REGRESSION, "did_not_start", "port in use")


def test_a_slower_figure_fails_only_at_fail_on_figure() -> None:
    def slower(run: ProbeRun) -> ProbeRun:
        p = run.profiles[0]
        assert p.assessment is not None and p.assessment.makespan is not None
        m = p.assessment.makespan
        doubled = Figure(median=m.median * 2, low=m.low * 2, high=m.high * 2, samples=m.samples)
        return _with_profile(run, p.name, makespan=doubled)

    comparison = compare(*_probe_pair(slower))
    [total] = comparison.figure_changes
    assert total.subject == "total makespan" and total.direction == Direction.REGRESSION
    assert comparison.exit_code(FailOn.VERDICT) == 0
    assert comparison.exit_code(FailOn.FIGURE) == 1


def test_a_narrower_run_is_judged_again_over_the_shared_profiles() -> None:
    comparison = compare(*_probe_pair(lambda run: dataclasses.replace(run, profiles=run.profiles[:2])))
    assert comparison.only_in_base == ("hypercorn-1-sync",)
    assert any("judged again" in note for note in comparison.notes)
    assert not [c for c in comparison.changes if c.direction == Direction.REGRESSION]


# --- capacity ------------------------------------------------------------------------------------


def _cap_pair(a: CapacityRun, b: CapacityRun) -> tuple[Loaded, Loaded]:
    return (
        Loaded(path="a.json", kind=ResultKind.CAPACITY, run=a, version=1),
        Loaded(path="b.json", kind=ResultKind.CAPACITY, run=b, version=1),
    )


def test_a_knee_is_a_figure_with_its_bracket_as_the_spread() -> None:
    knee = knee_figure(_capacity(8.0, miss=10.0).profiles[0])
    assert knee == Figure(median=8.0, low=8.0, high=10.0, samples=1)
    same = compare(*_cap_pair(_capacity(8.0, miss=10.0), _capacity(9.5, miss=10.0)))
    assert same.figure_changes == () and same.figure_rules == {"knee": KNEE_RULE}
    lower = compare(*_cap_pair(_capacity(8.0, miss=10.0), _capacity(4.0, miss=5.0)))
    assert [f.direction for f in lower.figure_changes] == [Direction.REGRESSION]


def test_losing_the_knee_or_the_target_rate_is_a_verdict_regression() -> None:
    comparison = compare(*_cap_pair(_capacity(8.0, target_rate=5), _capacity(4.0, miss=5.0, target_rate=5)))
    carries = next(c for c in comparison.changes if c.subject == "carries the target")
    assert (carries.direction, carries.base, carries.new) == (Direction.REGRESSION, "carries 5/s", "below 5/s")
    none = compare(*_cap_pair(_capacity(8.0), _capacity(None, miss=1.0)))
    assert [(c.subject, c.direction) for c in none.changes] == [("knee", Direction.REGRESSION)]
    sized = _capacity(8.0, target_rate=5)
    sizing = Sizing(
        target_rate=5,
        profile="uvicorn-1-offload",
        knee=8,
        workers=1,
        knee_per_worker=8,
        workers_needed=1,
        replicas_needed=1,
        cores=2,
        fits_cores=True,
    )
    worse = dataclasses.replace(sizing, workers_needed=3, fits_cores=False, text="needs 3 workers")
    found = compare(*_cap_pair(dataclasses.replace(sized, sizing=sizing), dataclasses.replace(sized, sizing=worse)))
    assert {c.subject for c in found.changes} == {"sizing: this machine has the cores", "sizing: workers needed"}


def test_other_capacity_options_are_not_comparable() -> None:
    other = dataclasses.replace(_capacity(8.0), options={**_capacity(8.0).options, "p99_target_s": 2.0})
    with pytest.raises(NotComparableError, match=r"p99_target_s 0\.5 != 2\.0"):
        compare(*_cap_pair(_capacity(8.0), other))


# --- the command: exit codes, --json, --html, pipes, NO_COLOR --------------------------------------


def test_the_command_exits_1_on_a_regression_and_prints_it_whole_in_a_pipe() -> None:
    result = CliRunner().invoke(main, ["compare", str(SHOP), str(SHOP_ASYNC)], env={"NO_COLOR": "1"})
    assert result.exit_code == 1, result.output
    assert "\x1b[" not in result.output
    line = next(line for line in result.output.splitlines() if "route lookup-threaded" in line)
    assert "runs_concurrently" in line and "blocks_event_loop" in line and "anyio.to_thread.run_sync" in line
    assert result.output.rstrip().endswith("exit 1")
    same = CliRunner().invoke(main, ["compare", str(SHOP), str(SHOP)])
    assert same.exit_code == 0 and "unchanged (1 of 1 profiles): uvicorn-1-sync" in same.output


def test_fail_on_levels() -> None:
    invoke = CliRunner().invoke
    assert invoke(main, ["compare", str(SHOP_ASYNC), str(SHOP)]).exit_code == 0
    assert invoke(main, ["compare", str(SHOP_ASYNC), str(SHOP), "--fail-on", "any"]).exit_code == 1
    assert invoke(main, ["compare", str(SHOP), str(SHOP), "--fail-on", "bogus"]).exit_code == 2


def test_json_and_html(tmp_path: Path) -> None:
    page = tmp_path / "c.html"
    result = CliRunner().invoke(main, ["compare", str(SHOP), str(SHOP_ASYNC), "--json", "--html", str(page)])
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert (data["schema"], data["exit_code"], data["regression"]) == ("launch.compare", 1, True)
    assert data["changes"][0]["new"] == "blocks_event_loop" and data["changes"][0]["direction"] == "regression"
    assert data["noise_rule"].startswith("medians within max(")
    text = page.read_text()
    assert "blocks_event_loop" in text and "<script" not in text
    comparison = compare(*read_pair(SHOP, SHOP_ASYNC))
    assert json.loads(dump(comparison))["exit_code"] == 1 and html_page(comparison).startswith("<!DOCTYPE html>")


def test_an_unreadable_file_names_itself(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["compare", str(SHOP), str(tmp_path / "missing.json")])
    assert result.exit_code == 2 and "missing.json: cannot read" in result.output


def test_a_baseline_of_another_kind_is_refused_before_anything_starts() -> None:
    result = CliRunner().invoke(
        main,
        ["probe", "--app", "examples.shop:app", "--scenarios", "examples/shop.toml", "--baseline", str(PROBE)],
    )
    assert result.exit_code == 2, result.output
    assert "is a launch probe result and this run a launch probe --app run: not comparable" in result.output
    missing = CliRunner().invoke(main, ["capacity", "--profiles", "uvicorn-1-sync", "--baseline", "nope.json"])
    assert missing.exit_code == 2 and "--baseline: nope.json: cannot read" in missing.output


def test_the_probe_report_takes_the_comparison_as_a_section() -> None:
    from launcher.compare.render import html_section
    from launcher.probe.html import render_html

    base, new = _probe_pair(lambda run: _with_profile(run, "uvicorn-1-sync", liveness=Liveness.BLOCKED))
    section = html_section(compare(base, new))
    assert isinstance(new.run, ProbeRun)
    page = render_html(new.run, comparison=section)
    assert page.index('<section id="comparison">') < page.index('<h2 class="summary">')
    assert "REGRESSION" in section and "liveness" in section and "exit 1" in section
    assert render_html(new.run) == render_html(new.run, comparison="")


def test_baseline_finish_exits_with_compares_code(capsys: pytest.CaptureFixture[str]) -> None:
    from launcher.cli.compare import finish

    base = Loaded(path="cap-base.json", kind=ResultKind.CAPACITY, run=_capacity(8.0, target_rate=5), version=1)
    for run, code in ((_capacity(8.0, target_rate=5), 0), (_capacity(4.0, miss=5.0, target_rate=5), 1)):
        with pytest.raises(SystemExit) as exited:
            finish(base, run, label="this run", fail_on="verdict", allow_different_machine=False)
        assert exited.value.code == code
    assert "carries the target" in capsys.readouterr().out


def _with_load(run: ProbeRun, *carried: bool, rate: float = 4.5) -> ProbeRun:
    from launcher.probe.model import LoadCheck
    from launcher.probe.recommend import recommend_for_load

    names = ("uvicorn-1-sync", "gunicorn-3-sync")
    checks = [
        LoadCheck(profile=n, backend=n.split("-")[0], processes=int(n.split("-")[1]), workers=1, carried=c, knee=2.0)
        for n, c in zip(names, carried, strict=False)
    ]
    decision = recommend_for_load(checks, rate=rate, route="/test2", p99_s=2.0, cores=2)
    return dataclasses.replace(run, load=decision)


def test_a_profile_that_no_longer_carries_the_target_is_a_regression_and_so_is_none_carrying_it() -> None:
    base, new = _probe_pair(lambda run: _with_load(run, False, False))
    assert isinstance(base.run, ProbeRun)
    base = dataclasses.replace(base, run=_with_load(base.run, True, True))
    comparison = compare(base, new)
    found = {(c.profile, c.subject): c for c in comparison.changes}
    assert found[("uvicorn-1-sync", "carries the target")].direction == Direction.REGRESSION
    assert (found[("", "recommendation for 4.5/s")].base, found[("", "recommendation for 4.5/s")].new) == (
        "uvicorn-1-sync",
        "none",
    )
    assert found[("", "recommendation for 4.5/s")].direction == Direction.REGRESSION
    assert comparison.exit_code(FailOn.VERDICT) == 1
    assert {c.direction for c in compare(new, base).changes} == {Direction.IMPROVEMENT}


def test_load_checks_of_different_targets_are_noted_not_compared() -> None:
    base, new = _probe_pair(lambda run: _with_load(run, False, False, rate=9))
    assert isinstance(base.run, ProbeRun)
    base = dataclasses.replace(base, run=_with_load(base.run, True, True))
    comparison = compare(base, new)
    assert comparison.changes == ()
    assert any("the load checks are not compared: their targets differ" in n for n in comparison.notes)
