"""Fit to serve and the recommendation, over synthetic results: hazards, liveness classes, ties, luck."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from launcher.probe.appprobe import AppProfileResult
from launcher.probe.assess import assess, liveness, liveness_by_scenario, worst_liveness
from launcher.probe.metrics import TIE_REL
from launcher.probe.model import (
    CheckOutcome,
    Conformance,
    ConformanceCheck,
    Liveness,
    ProfileResult,
    RequestRecord,
    ScenarioResult,
)
from launcher.probe.recommend import recommend, rejection
from launcher.probe.report import reason_group as rejection_group
from tests.launcher.probe.records import app_result, back_to_back, failed, health, ns, passed, result, scenario, work

S = 1.0


def click(
    pid: int,
    start_s: float,
    end_s: float,
    *,
    join: int | None = None,
    stream: int | None = None,
    index: int = 0,
    error: str | None = None,
) -> RequestRecord:
    """A demo click whose queue join and event stream were answered by ``join`` and ``stream`` (default: ``pid``)."""
    record = work(
        "demo",
        None if error else pid,
        None if error else start_s,
        None if error else end_s,
        sent_s=start_s - 0.01,
        index=index,
        error=error,
    )
    return dataclasses.replace(record, steps={"join": join or pid, "stream": stream or pid})


def _mixed(pid: int, makespan: float, *, repeat: int = 0) -> ScenarioResult:
    """Two demo clicks back to back on one pid, all their queue steps on that pid, taking ``makespan``."""
    step = makespan / 2
    records = [
        click(pid, 0.0, step, index=0),
        click(pid, step, makespan, index=1),
        health(pid, 0.1, 0.102),
    ]
    return dataclasses.replace(scenario("mixed", records, verdicts=[passed("mixed")]), repeat=repeat)


def _fit(name: str, *, makespans: tuple[float, ...] = (2.0,), pid: int = 101, **kw: object) -> ProfileResult:
    """A profile that is fit to serve, with one mixed burst per repeat taking ``makespans``."""
    scenarios = [_mixed(pid, m, repeat=i) for i, m in enumerate(makespans)]
    found = result(name, scenarios)
    return dataclasses.replace(found, pids=(pid,), launcher_pid=pid, **kw)  # type: ignore[arg-type]


class TestFitToServe:
    def test_a_fit_profile_qualifies(self) -> None:
        assert rejection(_fit("uvicorn-1-offload")) is None
        verdict = assess(_fit("uvicorn-1-offload"))
        assert verdict.fit and verdict.predicted and verdict.liveness == Liveness.FAST

    def test_a_server_that_had_to_be_killed_to_stop_is_not_fit(self) -> None:
        from launcher.probe.assess import FORCED_STOP

        forced = _fit("uvicorn-1-offload", stop_forced=True)
        assert assess(forced).unfit == (FORCED_STOP,)
        assert rejection(forced) == FORCED_STOP

    def test_did_not_start(self) -> None:
        assert rejection(result("uvicorn-1-sync", status="did_not_start", error="port in use")) == (
            "status did_not_start: port in use"
        )

    def test_not_as_predicted(self) -> None:
        bad = result("uvicorn-1-offload", [scenario("mixed", [], verdicts=[passed(), failed("mixed", "x holds")])])
        assert rejection(bad) == "not as predicted: mixed: x holds (no)"

    def test_split_queue_is_rejected_even_when_every_click_succeeded(self) -> None:
        # Every click of a 3-worker profile succeeded, but its queue requests were
        # served by two pids: the hazard is evidence, not luck.
        records = [
            click(101, 0.0, 1.0, join=101, stream=101, index=0),
            click(102, 0.0, 1.0, join=102, stream=102, index=1),
            click(101, 1.0, 2.0, join=101, stream=101, index=2),
            health(101, 0.1, 0.102),
        ]
        lucky = dataclasses.replace(
            result("uvicorn-3-offload", [scenario("mixed", records, verdicts=[passed("mixed")])]),
            pids=(101, 102, 103),
            launcher_pid=100,
        )
        verdict = assess(lucky)
        assert verdict.predicted and not verdict.fit
        assert verdict.hazards and "demo split over 3 processes" in verdict.hazards[0]
        assert "101, 102" in verdict.hazards[0]
        reason = rejection(lucky)
        assert reason is not None and reason.startswith("demo split over 3 processes")
        rec = recommend([lucky, _fit("uvicorn-1-offload", makespans=(9.0,))])
        assert rec is not None and rec.profile.name == "uvicorn-1-offload"

    def test_a_click_whose_steps_reached_two_processes_is_named(self) -> None:
        records = [click(101, 0.0, 1.0, join=101, stream=102), health(101, 0.1, 0.102)]
        split = result("uvicorn-3-sync", [scenario("mixed", records, verdicts=[passed()])])
        verdict = assess(split)
        assert "1 click(s) had their steps answered by different processes" in verdict.hazards[0]

    def test_one_worker_with_every_step_on_it_has_no_hazard(self) -> None:
        assert assess(_fit("uvicorn-1-sync")).hazards == ()

    def test_lost_clicks(self) -> None:
        records = [click(101, 0.0, 1.0), click(101, 0, 0, error="timeout", index=1), health(101, 0.1, 0.102)]
        lossy = result("uvicorn-1-offload", [scenario("mixed", records, verdicts=[passed()])])
        assert rejection(lossy) == "lost requests or clicks (mixed: timeout=1)"

    def test_failures_in_scenarios_that_reproduce_a_mistake_do_not_count(self) -> None:
        timeout = scenario("timeout", [work("api", None, None, None, error="disconnected")])
        noawait = scenario("noawait", [work("api", None, None, None, status=500)])
        base = _fit("gunicorn-1-offload")
        kept = dataclasses.replace(base, scenarios=(*base.scenarios, timeout, noawait))
        assert rejection(kept) is None

    def test_generate_not_serialized(self) -> None:
        records = [
            work("api", 101, 0, 2, pipeline=(0.1, 1.5), what="generate"),
            work("api", 101, 0, 2, pipeline=(0.5, 1.9), what="generate"),
        ]
        base = _fit("uvicorn-1-offload")
        parallel = dataclasses.replace(base, scenarios=(*base.scenarios, scenario("generate", records)))
        assert rejection(parallel) == "model access not serialized per worker (overlap 2)"

    def test_demo_not_exercised(self) -> None:
        only_sleep = result("uvicorn-1-offload", [scenario("sleep", [*back_to_back(101, 1, S), health(101, 0, 0.01)])])
        assert rejection(only_sleep) == "demo not exercised (no mixed scenario)"


class TestLiveness:
    def _with(self, name: str, *extra: ScenarioResult) -> ProfileResult:
        base = _fit(name)
        return dataclasses.replace(base, scenarios=(*base.scenarios, *extra))

    def test_async_is_blocked_by_construction(self) -> None:
        grade, _ = liveness(self._with("uvicorn-1-async"))
        assert grade == Liveness.BLOCKED

    def test_checks_that_all_wait_for_the_work_are_blocked_in_any_mode(self) -> None:
        records = [*back_to_back(101, 1, S), health(101, 0.2, 1.01), health(101, 0.5, 1.02)]
        for check in records[1:]:
            object.__setattr__(check, "end_ns", ns(1.0))
        grade, evidence = liveness(self._with("uvicorn-1-offload", scenario("sleep", records)))
        assert grade == Liveness.BLOCKED and "waits for the work" in evidence

    def test_a_late_answer_before_the_work_ends_is_not_blocked(self) -> None:
        records = [*back_to_back(101, 1, S), health(101, 0.2, 0.26), health(101, 0.5, 0.55)]
        grade, _ = liveness(self._with("uvicorn-1-offload", scenario("sleep", records)))
        assert grade == Liveness.FAST

    def test_sync_cpu_is_degraded_by_construction_even_when_checks_were_quick(self) -> None:
        cpu = scenario("cpu", [*back_to_back(101, 3, S), health(101, 0.2, 0.201)], n=3)
        grade, evidence = liveness(self._with("uvicorn-1-sync", cpu))
        assert grade == Liveness.DEGRADED and "GIL contention by construction" in evidence

    def test_offload_with_one_thread_is_fast(self) -> None:
        cpu = scenario("cpu", [*back_to_back(101, 3, S), health(101, 0.2, 0.22)], n=3)
        assert liveness(self._with("uvicorn-1-offload", cpu))[0] == Liveness.FAST

    def test_measured_starvation_is_degraded(self) -> None:
        checks = [health(101, 0.1 * i, 0.1 * i + 0.3) for i in range(1, 8)]
        sleep = scenario("sleep", [*back_to_back(101, 1, 2 * S), *checks])
        grade, evidence = liveness(self._with("uvicorn-1-offload", sleep))
        assert grade == Liveness.DEGRADED and "starved" in evidence

    def test_the_worst_scenario_decides_and_is_named(self) -> None:
        # issue 24: hypercorn-1-offload's checks pooled over every scenario had a 3 ms median, while its cpu
        # bursts' median was 157-408 ms; pooled, the class stayed fast.
        quick = [health(101, 0.05 * i, 0.05 * i + 0.003) for i in range(1, 39)]
        sleep = scenario("sleep", [*back_to_back(101, 1, 2 * S), *quick])
        slow = [health(101, 0.1 * i, 0.1 * i + 0.25) for i in range(1, 8)]
        cpu = scenario("cpu", [*back_to_back(101, 1, S), *slow], n=3)
        profile = self._with("hypercorn-1-offload", sleep, cpu)
        graded = {g.scenario: g.grade for g in liveness_by_scenario(profile)}
        assert graded["sleep"] == Liveness.FAST and graded["cpu"] == Liveness.DEGRADED
        worst = worst_liveness(profile)
        assert worst.grade == Liveness.DEGRADED and worst.scenario == "cpu"
        assert worst.evidence.startswith("/health starved while work ran: cpu: median 250 ms")
        verdict = assess(profile)
        assert verdict.liveness == Liveness.DEGRADED and verdict.liveness_scenario == "cpu" and not verdict.fit

    def test_async_is_blocked_in_every_scenario_and_names_none(self) -> None:
        worst = worst_liveness(self._with("uvicorn-1-async"))
        assert worst.grade == Liveness.BLOCKED and worst.scenario == "" and "by construction" in worst.evidence

    def test_not_polled(self) -> None:
        only = result("uvicorn-1-offload", [scenario("sleep", back_to_back(101, 1, S))])
        assert liveness(only)[0] == Liveness.UNKNOWN


class TestRecommend:
    def test_none_when_nothing_qualifies(self) -> None:
        assert recommend([]) is None
        assert recommend([result("uvicorn-1-sync", status="did_not_start")]) is None

    def test_clear_winner_by_median(self) -> None:
        slow = _fit("hypercorn-1-offload", makespans=(4.0, 4.1, 3.9))
        fast = _fit("gunicorn-1-offload", makespans=(2.5, 2.6, 2.4))
        rec = recommend([slow, fast])
        assert rec is not None and rec.profile.name == "gunicorn-1-offload" and rec.tied == ()
        assert rec.rejected["hypercorn-1-offload"].startswith("fit, but slower: total makespan 4.02s")
        assert "3 repeat(s)" in rec.rule

    def test_a_tie_within_the_spread_goes_to_fewer_processes_then_backend_order(self) -> None:
        gunicorn = _fit("gunicorn-1-offload", makespans=(2.0, 2.6), pid=201)
        gunicorn = dataclasses.replace(gunicorn, launcher_pid=200)  # the arbiter is a process of its own
        uvicorn = _fit("uvicorn-1-offload", makespans=(2.5, 2.3))
        hypercorn = _fit("hypercorn-1-offload", makespans=(2.4, 2.4))
        rec = recommend([gunicorn, hypercorn, uvicorn])
        assert rec is not None
        assert rec.profile.name == "uvicorn-1-offload"
        assert set(rec.tied) == {"gunicorn-1-offload", "uvicorn-1-offload", "hypercorn-1-offload"}
        assert "tie between" in rec.why
        assert rec.rejected["gunicorn-1-offload"].startswith("tie with uvicorn-1-offload")

    def test_relative_tolerance_makes_a_tie_without_repeats(self) -> None:
        a = _fit("hypercorn-1-offload", makespans=(10.0,))
        b = _fit("uvicorn-1-offload", makespans=(10.0 * (1 + TIE_REL * 0.9),))
        rec = recommend([a, b])
        assert rec is not None and rec.profile.name == "uvicorn-1-offload" and len(rec.tied) == 2


PIDS = (101, 102, 103)


@st.composite
def spread_run(draw: st.DrawFn) -> tuple[list[int], list[int], list[int]]:
    """Three clicks: for each, the pid of its join, its stream and the worker that ran it, as the kernel chose."""
    joins = draw(st.lists(st.sampled_from(PIDS), min_size=3, max_size=3))
    streams = draw(st.lists(st.sampled_from(PIDS), min_size=3, max_size=3))
    return joins, streams, joins


@given(spread_run())
@settings(max_examples=60, deadline=None)
def test_a_multi_worker_demo_is_never_recommended_whatever_the_spread(spread: tuple[list[int], ...]) -> None:
    joins, streams, runners = spread
    records = [
        click(runner, i * 1.0, i * 1.0 + 0.5, join=join, stream=stream, index=i)
        for i, (join, stream, runner) in enumerate(zip(joins, streams, runners, strict=True))
    ]
    records.append(health(joins[0], 0.1, 0.101))
    multi = dataclasses.replace(
        result("uvicorn-3-offload", [scenario("mixed", records, verdicts=[passed()])]), pids=PIDS, launcher_pid=100
    )
    assert not assess(multi).fit
    rec = recommend([multi, _fit("uvicorn-1-offload", makespans=(50.0,))])
    assert rec is not None and rec.profile.name == "uvicorn-1-offload"


@given(st.permutations(list(range(3))), st.lists(st.floats(1.0, 1.2), min_size=3, max_size=3))
@settings(max_examples=60, deadline=None)
def test_the_recommendation_does_not_depend_on_the_order_of_the_results(order: list[int], scales: list[float]) -> None:
    names = ("uvicorn-1-offload", "hypercorn-1-offload", "gunicorn-1-offload")
    results = [_fit(name, makespans=(2.0 * scale, 2.0 * scale)) for name, scale in zip(names, scales, strict=True)]
    first = recommend(results)
    again = recommend([results[i] for i in order])
    assert first is not None and again is not None
    assert first.profile.name == again.profile.name
    assert set(first.tied) == set(again.tied)


@given(st.lists(st.sampled_from(PIDS), min_size=2, max_size=6))
@settings(max_examples=60, deadline=None)
def test_sync_cpu_liveness_is_degraded_whatever_the_spread(pids: list[int]) -> None:
    records = [work("api", pid, 0.0, 1.0, index=i) for i, pid in enumerate(pids)]
    records += [health(pid, 0.3, 0.31) for pid in PIDS]
    base = _fit("uvicorn-3-sync")
    profile = dataclasses.replace(base, scenarios=(*base.scenarios, scenario("cpu", records, n=len(pids))))
    assert liveness(profile)[0] == Liveness.DEGRADED


class TestServerDefect:
    """A backend that failed the server conformance check: its demo profiles are UNFIT for the server's defect."""

    def _check(self, *, passed: bool, relay: bool = False) -> Conformance:
        outcome = CheckOutcome(
            check=ConformanceCheck.NO_FALSE_DISCONNECT,
            passed=passed,
            observed="4 of 4" if not passed else "0 of 4",
            mechanism="" if passed else "a cancelled receive() marks the live connection closed",
        )
        return Conformance(
            backend="gunicorn-asgi", relay=relay, server="gunicorn", version="27.0.1", outcomes=(outcome,)
        )

    def test_the_defect_is_the_first_reason_and_names_the_server(self) -> None:
        verdict = assess(_fit("gunicorn-asgi-1-offload"), self._check(passed=False))
        assert not verdict.fit
        assert verdict.unfit[0] == (
            "server defect: a cancelled receive() marks the live connection closed (gunicorn 27.0.1)"
        )

    def test_the_advice_names_the_relay_when_it_passes_the_check(self) -> None:
        verdict = assess(
            _fit("gunicorn-asgi-1-offload"), self._check(passed=False), relayed=self._check(passed=True, relay=True)
        )
        assert verdict.unfit[0].endswith("(gunicorn 27.0.1); disconnect_relay = true passes the check")
        assert rejection_group(verdict.unfit[0]) == verdict.unfit[0]  # grouped whole: it names server and version

    def test_a_server_that_passes_is_no_reason(self) -> None:
        assert assess(_fit("gunicorn-asgi-1-offload"), self._check(passed=True)).fit


ONE_RULE_PROFILES = (
    "uvicorn-1-offload",
    "hypercorn-1-offload",
    "gunicorn-1-offload",
    "granian-1-offload",
    "gunicorn-asgi-1-offload",
    "uvicorn-3-offload",
    "gunicorn-3-offload",
)


@st.composite
def one_rule_runs(draw: st.DrawFn) -> list[tuple[str, tuple[float, ...], bool, bool]]:
    """Profiles of one run: name, makespan per repeat (the same count for all), a lost click, a forced stop."""
    names = draw(st.lists(st.sampled_from(ONE_RULE_PROFILES), min_size=1, max_size=5, unique=True))
    repeats = draw(st.integers(1, 3))
    runs = [
        (
            name,
            tuple(draw(st.lists(st.floats(0.5, 3.0), min_size=repeats, max_size=repeats))),
            draw(st.booleans()),
            draw(st.booleans()),
        )
        for name in names
    ]
    # A route that fails under every profile is the app's own code (it rejects none there): not this test.
    if all(lost for _, _, lost, _ in runs):
        runs[0] = (*runs[0][:2], False, runs[0][3])
    return runs


def _reference(name: str, makespans: tuple[float, ...], lost: bool, forced: bool) -> ProfileResult:
    found = _fit(name, makespans=makespans, stop_forced=forced)
    if not lost:
        return found
    first = found.scenarios[0]
    lost_click = click(101, 0.0, 0.1, index=9, error="disconnected")
    return dataclasses.replace(
        found, scenarios=(dataclasses.replace(first, records=(*first.records, lost_click)), *found.scenarios[1:])
    )


def _as_app(reference: ProfileResult, lost: bool) -> AppProfileResult:
    """The same facts as a user app's result: one demo route whose repeats took the reference's totals."""
    from launcher.probe.assess import total_makespans
    from launcher.probe.routes import CONCURRENT, FAILS

    return app_result(
        reference.name,
        reference.profile.backend,
        reference.profile.workers,
        total_makespans(reference),
        route="gradio /sleep",
        route_class=FAILS if lost else CONCURRENT,
        errors=("disconnected",) if lost else (),
        serial_ratio=2.0,
        stop_forced=reference.stop_forced,
        server_processes=assess(reference).processes,
    )


@given(one_rule_runs())
@settings(max_examples=80, deadline=None)
def test_one_rule_decides_for_the_reference_service_and_a_users_app_alike(
    runs: list[tuple[str, tuple[float, ...], bool, bool]],
) -> None:
    """The same facts, as a reference probe's results and as a user app's (with a demo): the same winner, the
    same ties, the same profiles rejected; never a profile that lost a click, stopped only by SIGKILL or holds
    the demo in several processes."""
    from launcher.probe.appprobe import recommend as recommend_app
    from launcher.probe.recommend import candidate, candidate_key

    references = [_reference(*run) for run in runs]
    apps = [_as_app(ref, lost) for ref, (_, _, lost, _) in zip(references, runs, strict=True)]
    by_reference = recommend(references)
    by_app = recommend_app(apps, serves_demo=True)
    assert (by_reference.profile.name if by_reference else None) == by_app.profile
    assert (by_reference.tied if by_reference else ()) == (
        (by_app.profile, *by_app.tied_with) if by_app.tied_with else ()
    )
    assert set(by_reference.rejected if by_reference else {}) <= set(by_app.rejected)
    qualifying = {name for name, _, lost, forced in runs if not lost and not forced and name.split("-")[-2] == "1"}
    if by_reference is None:
        assert not qualifying
        return
    assert by_reference.profile.name in qualifying
    assert set(by_reference.tied) <= qualifying
    # The winner comes first among those tied, by the one tie-break.
    tied = [candidate(r) for r in references if r.name in (by_reference.tied or (by_reference.profile.name,))]
    winner = next(c for c in tied if c.name == by_reference.profile.name)
    assert candidate_key(winner) == min(candidate_key(c) for c in tied)
