"""The write-up's claims, judged on synthetic evidence."""

from __future__ import annotations

import dataclasses

import pytest

from launcher.probe.claims import CLAIMS, judge_claims
from launcher.probe.judge import judge
from launcher.probe.model import Claim, LogEvent, ProfileResult, QueueStatus
from profiles import builtin_profiles
from tests.launcher.probe.records import (
    back_to_back,
    failed,
    health,
    passed,
    result,
    scenario,
    together,
    work,
)

S = 1.0


def _claim(results: list[ProfileResult], number: int, *, cores: int = 2) -> Claim:
    claims, _ = judge(results, cores=cores)
    return claims[number - 1]


def _cpu_three(name: str, took: float) -> ProfileResult:
    """3 CPU requests of S on three workers that took ``took`` seconds in all."""
    records = [work("api", 101 + i, 0, took, what="cpu", index=i) for i in range(3)]
    cpu = {str(101 + i): S for i in range(3)}
    return result(name, [dataclasses.replace(scenario("cpu", records, seconds=S), cpu_seconds=cpu)])


class TestJudgeClaims:
    def test_twelve_claims_numbered(self) -> None:
        claims = judge_claims([], cores=2, recommendation=None)
        assert [c.number for c in claims] == list(range(1, 13))
        assert [c.text for c in claims] == list(CLAIMS)
        assert all(c.evidence for c in claims)

    def test_everything_untested_without_results(self) -> None:
        assert {c.verdict for c in judge_claims([], cores=2, recommendation=None)} == {"UNTESTED"}

    def test_untested_when_the_scenario_is_missing(self) -> None:
        # Every built-in profile, but only the generate scenario: claims 1-8 need other scenarios.
        results = [result(name, [scenario("generate", back_to_back(101, 1, S))]) for name in builtin_profiles()]
        claims, _ = judge(results, cores=2)
        assert [c.verdict for c in claims[:8]] == ["UNTESTED"] * 8
        assert claims[8].verdict == "DEPENDS"  # gunicorn async is there; no WORKER TIMEOUT seen
        assert claims[9].verdict == "REFUTED"  # uvicorn-1-async is there but never ran the demo

    def test_verdicts_are_known(self) -> None:
        results = [
            result("uvicorn-1-sync", [scenario("sleep", together(101, 3, S))]),
            _cpu_three("uvicorn-3-sync", 1.5 * S),
        ]
        for claim in judge(results, cores=2)[0]:
            assert claim.verdict in {"CONFIRMED", "REFUTED", "DEPENDS", "UNTESTED"}


class TestClaim1ConcurrencyLimit:
    def _mixed(self, demo: list, api: list) -> list[ProfileResult]:
        return [result("uvicorn-1-sync", [scenario("mixed", demo + api)])]

    def test_confirmed(self) -> None:
        demo = back_to_back(101, 3, S, kind="demo")
        api = [work("api", 101, 0.05, 0.05 + S, sent_s=0, index=i) for i in range(3)]
        claim = _claim(self._mixed(demo, api), 1)
        assert claim.verdict == "CONFIRMED", claim.evidence
        assert "overlapped at most 1 (limit 1)" in claim.evidence

    def test_refuted_when_demo_events_overlap_past_the_limit(self) -> None:
        demo = together(101, 2, S, kind="demo")
        api = [work("api", 101, 0.05, 0.05 + S)]
        assert _claim(self._mixed(demo, api), 1).verdict == "REFUTED"

    def test_refuted_when_api_calls_waited_for_the_demo(self) -> None:
        demo = back_to_back(101, 2, S, kind="demo")
        api = [work("api", 101, 2 * S, 3 * S, sent_s=0)]
        assert _claim(self._mixed(demo, api), 1).verdict == "REFUTED"

    def test_untested_on_other_profiles(self) -> None:
        demo = back_to_back(101, 3, S, kind="demo")
        assert _claim([result("uvicorn-3-sync", [scenario("mixed", demo)])], 1).verdict == "UNTESTED"
        assert _claim([result("uvicorn-1-async", [scenario("mixed", demo)])], 1).verdict == "UNTESTED"


class TestClaim2Gil:
    def test_confirmed_when_each_took_n_times_s(self) -> None:
        records = [work("api", 101, 0, 3 * S, what="cpu", index=i) for i in range(3)]
        claim = _claim([result("uvicorn-1-sync", [scenario("cpu", records, seconds=S)])], 2)
        assert claim.verdict == "CONFIRMED"
        assert "(3.0x)" in claim.evidence

    def test_refuted_when_each_took_s(self) -> None:
        records = back_to_back(101, 3, S)
        assert _claim([result("uvicorn-1-sync", [scenario("cpu", records, seconds=S)])], 2).verdict == "REFUTED"

    def test_untested_with_one_request(self) -> None:
        records = back_to_back(101, 1, S)
        assert _claim([result("uvicorn-1-sync", [scenario("cpu", records, seconds=S)])], 2).verdict == "UNTESTED"


class TestClaim3Parallel:
    def test_depends_on_the_mode(self) -> None:
        results = [
            result("uvicorn-1-sync", [scenario("sleep", together(101, 3, S))]),
            result("uvicorn-1-async", [scenario("sleep", back_to_back(101, 3, S))]),
        ]
        claim = _claim(results, 3)
        assert claim.verdict == "DEPENDS"
        assert "uvicorn-1-sync: 3 of 3 sleeps ran at once" in claim.evidence
        assert "uvicorn-1-async: 1 of 3" in claim.evidence

    def test_confirmed_for_sync_only(self) -> None:
        assert _claim([result("uvicorn-1-sync", [scenario("sleep", together(101, 3, S))])], 3).verdict == "CONFIRMED"

    def test_refuted_for_async_only(self) -> None:
        results = [result("uvicorn-1-async", [scenario("sleep", back_to_back(101, 3, S))])]
        assert _claim(results, 3).verdict == "REFUTED"

    def test_offload_is_judged_by_its_limiter_not_by_the_overlap_seen(self) -> None:
        one = result("uvicorn-1-offload", [scenario("sleep", back_to_back(101, 3, S))])
        assert _claim([one], 3).verdict == "REFUTED"
        wide = dataclasses.replace(one, profile=one.profile.replace(limiter=3))
        claim = _claim([wide], 3)
        assert claim.verdict == "CONFIRMED" and "1 of 3 sleeps ran at once" in claim.evidence


class TestClaim4AsyncBlocksApi:
    def _mixed(self, name: str, *, beside: bool) -> ProfileResult:
        demo = back_to_back(101, 2, S, kind="demo")
        api_pid, api_start = (102, 0.1) if beside else (101, 2 * S)
        return result(name, [scenario("mixed", [*demo, work("api", api_pid, api_start, api_start + S, sent_s=0)])])

    def test_confirmed_with_one_worker(self) -> None:
        assert _claim([self._mixed("uvicorn-1-async", beside=False)], 4).verdict == "CONFIRMED"

    def test_depends_on_workers(self) -> None:
        results = [self._mixed("uvicorn-1-async", beside=False), self._mixed("uvicorn-3-async", beside=True)]
        claim = _claim(results, 4)
        assert claim.verdict == "DEPENDS"
        # The API call (0.1 s to 1.1 s) ran beside both demo clicks (0-1 s and 1-2 s).
        assert "uvicorn-3-async: API calls ran during demo jobs 2 time(s)" in claim.evidence

    @pytest.mark.parametrize("beside", [False, True])
    def test_the_kernels_spread_does_not_decide(self, beside: bool) -> None:
        # issue 24: CONFIRMED in one run, DEPENDS in the next, as the kernel put the API call beside the demo job
        # or not. Several workers can run it beside, by construction; the count is the illustration.
        results = [self._mixed("uvicorn-1-async", beside=False), self._mixed("uvicorn-3-async", beside=beside)]
        claim = _claim(results, 4)
        assert claim.verdict == "DEPENDS"
        assert f"uvicorn-3-async: API calls ran during demo jobs {2 if beside else 0} time(s)" in claim.evidence
        alone = _claim([self._mixed("uvicorn-3-async", beside=beside)], 4)
        assert alone.verdict == "REFUTED"

    def test_untested_without_async_mixed(self) -> None:
        assert _claim([self._mixed("uvicorn-1-sync", beside=True)], 4).verdict == "UNTESTED"


class TestClaim5Overtake:
    def test_confirmed_when_an_api_sent_after_a_click_started_before_it(self) -> None:
        demo = [work("demo", 101, 1.0, 2.0, sent_s=0.0)]  # queued for a second
        api = [work("api", 101, 0.15, 1.0, sent_s=0.1)]
        claim = _claim([result("uvicorn-1-async", [scenario("mixed", demo + api)])], 5)
        assert claim.verdict == "CONFIRMED"
        assert "1 of 1 API calls" in claim.evidence

    def test_depends_when_not_observed(self) -> None:
        demo = [work("demo", 101, 0.05, 1.0, sent_s=0.0)]
        api = [work("api", 101, 1.0, 2.0, sent_s=0.1)]
        claim = _claim([result("uvicorn-1-async", [scenario("mixed", demo + api)])], 5)
        assert claim.verdict == "DEPENDS"
        assert "not observed in 1 API calls" in claim.evidence

    def test_api_sent_first_is_no_overtake(self) -> None:
        demo = [work("demo", 101, 1.0, 2.0, sent_s=0.2)]
        api = [work("api", 101, 0.15, 1.0, sent_s=0.1)]
        assert _claim([result("uvicorn-1-async", [scenario("mixed", demo + api)])], 5).verdict == "DEPENDS"

    def test_untested_without_the_scenario(self) -> None:
        assert _claim([result("uvicorn-1-async", [scenario("sleep", back_to_back(101, 3, S))])], 5).verdict == (
            "UNTESTED"
        )


class TestClaim6ClientsWait:
    def test_confirmed_when_requests_queue(self) -> None:
        records = [*back_to_back(101, 3, S), health(101, 0.5, 1.0)]
        claim = _claim([result("uvicorn-1-async", [scenario("sleep", records, seconds=S)])], 6)
        assert claim.verdict == "CONFIRMED"
        assert "took up to 3.01s" in claim.evidence

    def test_refuted_when_nothing_waited(self) -> None:
        records = back_to_back(101, 1, S)
        assert _claim([result("uvicorn-1-async", [scenario("sleep", records, seconds=S)])], 6).verdict == "REFUTED"

    def test_untested(self) -> None:
        assert _claim([result("uvicorn-1-sync", [scenario("sleep", back_to_back(101, 3, S))])], 6).verdict == (
            "UNTESTED"
        )


class TestClaims7And8CpuParallel:
    @pytest.mark.parametrize(("number", "backend"), [(7, "uvicorn"), (8, "gunicorn")])
    def test_depends_on_two_cores_when_three_took_one_and_a_half_s(self, number: int, backend: str) -> None:
        # 3 CPU-s in 1.5 s on 2 cores: perfect parallelism up to the core count, never a refutation.
        claim = _claim([_cpu_three(f"{backend}-3-sync", 1.5 * S)], number, cores=2)
        assert claim.verdict == "DEPENDS"
        assert "parallel efficiency 100%" in claim.evidence
        assert ">= 3 cores" in claim.evidence and "2 core(s)" in claim.evidence

    @pytest.mark.parametrize(("number", "backend"), [(7, "uvicorn"), (8, "gunicorn")])
    def test_confirmed_when_three_took_about_s_on_enough_cores(self, number: int, backend: str) -> None:
        claim = _claim([_cpu_three(f"{backend}-3-offload", 1.05 * S)], number, cores=4)
        assert claim.verdict == "CONFIRMED"
        assert "on 3 worker(s)" in claim.evidence

    @pytest.mark.parametrize("cores", [2, 4])
    def test_a_run_whose_processes_never_overlapped_is_judged_by_structure(self, cores: int) -> None:
        # The kernel's spread and other load decide the figure, not the claim: the count stays as evidence.
        records = [work("api", 101 + i, i * S, (i + 1) * S, what="cpu", index=i) for i in range(3)]
        serial = result("uvicorn-3-sync", [scenario("cpu", records, seconds=S)])
        claim = _claim([serial], 7, cores=cores)
        assert claim.verdict == ("CONFIRMED" if cores >= 3 else "DEPENDS")
        assert "never ran their CPU work at the same time" in claim.evidence

    @pytest.mark.parametrize("cores", [2, 4])
    def test_a_run_where_one_worker_got_everything_is_judged_by_structure(self, cores: int) -> None:
        records = [work("api", 101, i * S, (i + 1) * S, what="cpu", index=i) for i in range(3)]
        claim = _claim([result("uvicorn-3-sync", [scenario("cpu", records, seconds=S)])], 7, cores=cores)
        assert claim.verdict == ("CONFIRMED" if cores >= 3 else "DEPENDS")
        assert "the kernel put every connection on one worker" in claim.evidence

    def test_other_backend_and_one_worker_do_not_count(self) -> None:
        results = [_cpu_three("gunicorn-3-sync", S), _cpu_three("uvicorn-1-sync", S)]
        assert _claim(results, 7).verdict == "UNTESTED"
        assert _claim(results, 8).verdict in {"CONFIRMED", "DEPENDS"}


class TestClaim9WorkerTimeout:
    def test_untested_without_gunicorn_async(self) -> None:
        assert _claim([result("gunicorn-1-sync")], 9).verdict == "UNTESTED"

    def test_depends_without_timeouts(self) -> None:
        claim = _claim([result("gunicorn-3-async", [scenario("sleep", back_to_back(101, 3, S))])], 9)
        assert claim.verdict == "DEPENDS"
        assert claim.evidence.startswith("no WORKER TIMEOUT in short bursts")

    def test_depends_with_counts(self) -> None:
        event = LogEvent(kind="worker_timeout", pid=4319, line="[CRITICAL] WORKER TIMEOUT (pid:4319)")
        timeout = scenario("timeout", [work("api", None, None, None, error="disconnected")], log_events=[event])
        claim = _claim([result("gunicorn-1-async", [timeout])], 9)
        assert claim.verdict == "DEPENDS"
        assert claim.evidence.startswith("WORKER TIMEOUT 1 time(s) in 1 timeout scenario(s)")
        assert "0 time(s) in ordinary bursts" in claim.evidence


class TestClaim10Advice:
    def _good_mixed(self, name: str, *, verdicts: tuple = ()) -> ProfileResult:
        records = [*back_to_back(101, 2, S, kind="demo"), health(101, 0.5, 0.51)]
        return result(name, [scenario("mixed", records, verdicts=verdicts or (passed("mixed"),))])

    def test_untested_without_the_profile(self) -> None:
        assert _claim([self._good_mixed("uvicorn-1-sync")], 10).verdict == "UNTESTED"

    def test_refuted_even_when_it_behaves_as_predicted(self) -> None:
        # As predicted, yet never fit to serve: its event loop is blocked by construction.
        claim = _claim([self._good_mixed("uvicorn-1-async")], 10)
        assert claim.verdict == "REFUTED"
        assert "Recommended instead: none" in claim.evidence

    def test_refuted_when_another_is_recommended(self) -> None:
        advised = self._good_mixed("uvicorn-1-async", verdicts=(failed("mixed"),))
        claim = _claim([advised, self._good_mixed("uvicorn-1-offload")], 10)
        assert claim.verdict == "REFUTED"
        assert "Recommended instead: uvicorn-1-offload" in claim.evidence
        assert "1 expectation(s) failed" in claim.evidence

    def test_refuted_when_nothing_qualifies(self) -> None:
        claim = _claim([result("uvicorn-1-async", status="did_not_start")], 10)
        assert claim.verdict == "REFUTED"
        assert "Recommended instead: none" in claim.evidence


class TestClaim11QueueStatus:
    def _waiting(self, name: str, status_at: float) -> ProfileResult:
        """Two clicks on one pid: the second waits, and learns its queue position at ``status_at``."""
        first = work("demo", 101, 0.0, S, sent_s=0.0, index=0)
        second = work("demo", 101, S, 2 * S, sent_s=0.0, index=1)
        from tests.launcher.probe.records import ns

        second = dataclasses.replace(second, queue=(QueueStatus(at_ns=ns(status_at), rank=1, queue_size=2),))
        return result(name, [scenario("mixed", [first, second])])

    def test_confirmed_when_async_shows_the_queue_only_after_the_job(self) -> None:
        results = [self._waiting("uvicorn-1-async", 1.05), self._waiting("uvicorn-1-offload", 0.05)]
        claim = _claim(results, 11)
        assert claim.verdict == "CONFIRMED", claim.evidence
        assert "async: 0 of 1 waiting clicks" in claim.evidence
        assert "offload: 1 of 1" in claim.evidence

    def test_refuted_when_async_shows_it_in_advance(self) -> None:
        assert _claim([self._waiting("uvicorn-1-async", 0.05)], 11).verdict == "REFUTED"

    def test_untested_without_waiting_async_clicks(self) -> None:
        assert _claim([self._waiting("uvicorn-1-offload", 0.05)], 11).verdict == "UNTESTED"


class TestClaim12NoAwait:
    def _noawait(self, note: str, *, lone_ok: bool = False) -> ProfileResult:
        records = [
            work("api", None, None, None, index=0, status=200 if lone_ok else 500),
            work("demo", None, None, None, index=1, error="demo_AppError"),
            work("api", None, None, None, index=2, status=500),
        ]
        records = [dataclasses.replace(r, error=r.error or (None if r.status == 200 else "http_500")) for r in records]
        return result("uvicorn-1-sync", [dataclasses.replace(scenario("noawait", records), note=note)])

    def test_confirmed_with_the_nuance_that_simultaneity_plays_no_part(self) -> None:
        note = "ValueError: [TypeError(\"'coroutine' object is not iterable\"), TypeError('vars()')]"
        claim = _claim([self._noawait(note)], 12)
        assert claim.verdict == "CONFIRMED"
        assert "simultaneity plays no part" in claim.evidence

    def test_depends_when_another_error_is_returned(self) -> None:
        assert _claim([self._noawait("ValueError: something else")], 12).verdict == "DEPENDS"

    def test_untested_without_the_lab_scenario(self) -> None:
        assert _claim([], 12).verdict == "UNTESTED"
