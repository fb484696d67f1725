"""The expectation model over synthetic bursts: invariants that hold whatever the spread over workers."""

from __future__ import annotations

import dataclasses

import pytest

from launcher.probe import expectations as ex
from launcher.probe.expectations import (
    ABS_TOLERANCE_S,
    DISPATCH_SLACK_S,
    HEALTH_FAST_S,
    MIN_CHECKS_REACHING_WORK,
    THREAD_POOL,
    check_api_not_queued,
    check_cpu_parallelism,
    check_demo_queue,
    check_full_overlap,
    check_gil_bound,
    check_gunicorn_timeout,
    check_health_answered_during_work,
    check_health_blocked,
    check_health_fast,
    check_no_errors,
    check_no_worker_lost,
    check_overlap_at_most,
    check_serial_makespan,
    check_serialized_per_pid,
    check_thread_pool_queueing,
    expectations,
)
from launcher.probe.model import WORK_KINDS, Kind, LogEvent, Verdict
from profiles import builtin_profiles
from tests.launcher.probe.records import back_to_back, health, profile, scenario, spread, together, work

S = 1.0
SPREADS = [(6, 0, 0), (3, 2, 1), (2, 2, 2)]


class TestNoErrors:
    def test_all_completed(self) -> None:
        verdict = check_no_errors(scenario("sleep", spread([2, 1], S)))
        assert verdict.passed
        assert verdict.observed == "errors: none"

    def test_failure_fails(self) -> None:
        records = [*spread([1], S), work("api", None, None, None, error="timeout")]
        verdict = check_no_errors(scenario("sleep", records))
        assert not verdict.passed
        assert "timeout=1" in verdict.observed

    def test_allowed_class_is_reported_not_failed(self) -> None:
        records = [*spread([1], S), work("demo", None, None, None, error="queue_split")]
        verdict = check_no_errors(scenario("mixed", records), allow=("queue_split",))
        assert verdict.passed
        assert "queue_split=1" in verdict.observed
        assert "queue_split" in verdict.expectation

    def test_other_class_still_fails_when_one_is_allowed(self) -> None:
        records = [work("demo", None, None, None, error="queue_split"), work("api", 1, 0, 1, status=500)]
        assert not check_no_errors(scenario("mixed", records), allow=("queue_split",)).passed

    def test_failed_health_checks_are_not_work_errors(self) -> None:
        records = [*spread([1], S), health(101, 0.1, 0.2, error="timeout")]
        assert check_no_errors(scenario("sleep", records)).passed


class TestAsyncSleepWhateverTheSpread:
    """``async`` 3 workers, 6 sleeps: each pid serializes what it got; the makespan follows the busiest pid."""

    @pytest.mark.parametrize("counts", SPREADS, ids=lambda c: "/".join(map(str, c)))
    def test_serialized_per_pid(self, counts: tuple[int, ...]) -> None:
        verdict = check_serialized_per_pid(scenario("sleep", spread(counts, S)))
        assert verdict.passed, verdict.observed
        assert verdict.observed.startswith("max overlap per pid 1")

    @pytest.mark.parametrize("counts", SPREADS, ids=lambda c: "/".join(map(str, c)))
    def test_serial_makespan_uses_largest_per_pid_count(self, counts: tuple[int, ...]) -> None:
        verdict = check_serial_makespan(scenario("sleep", spread(counts, S), seconds=S))
        assert verdict.passed, verdict.observed
        assert f"max {max(counts)} per pid" in verdict.observed
        assert f"= {max(counts) * S:.2f}s" in verdict.observed

    @pytest.mark.parametrize("counts", SPREADS, ids=lambda c: "/".join(map(str, c)))
    def test_every_expectation_holds(self, counts: tuple[int, ...]) -> None:
        polled = [*spread(counts, S), health(104, 0.1, 0.11)]  # a health check answered by an idle worker
        verdicts = expectations(profile("uvicorn-3-async"), scenario("sleep", polled), cores=2)
        assert [v for v in verdicts if not v.passed] == []
        assert len(verdicts) == 5

    def test_makespan_of_all_six_fails_for_an_even_spread(self) -> None:
        # 2/2/2 but the workers took turns instead of running side by side: 6 x S, not 2 x S.
        records = [work("api", 101 + i % 3, i * S, (i + 1) * S, sent_s=0, index=i) for i in range(6)]
        verdict = check_serial_makespan(scenario("sleep", records, seconds=S))
        assert not verdict.passed
        assert "work span 6.00s for max 2 per pid" in verdict.observed

    def test_makespan_too_short_fails(self) -> None:
        # 6 on one pid that finished in 2 x S: cannot be serialized.
        records = [work("api", 101, i * S / 3, (i + 1) * S / 3, sent_s=0, index=i) for i in range(6)]
        assert not check_serial_makespan(scenario("sleep", records, seconds=S)).passed

    def test_makespan_tolerance_edges(self) -> None:
        k = 3
        high = k * S * (1 + ex.REL_TOLERANCE) + ABS_TOLERANCE_S
        low = k * S * (1 - ex.REL_TOLERANCE) - ABS_TOLERANCE_S
        for span, ok in ((high - 0.01, True), (high + 0.01, False), (low + 0.01, True), (low - 0.01, False)):
            step = span / k
            records = [work("api", 101, i * step, (i + 1) * step, sent_s=0, index=i) for i in range(k)]
            assert check_serial_makespan(scenario("sleep", records, seconds=S)).passed is ok, span

    def test_makespan_without_attributed_work_fails(self) -> None:
        records = [work("api", None, None, None, error="timeout")]
        assert not check_serial_makespan(scenario("sleep", records, seconds=S)).passed

    def test_overlapping_pair_in_one_pid_fails_with_the_pid(self) -> None:
        records = [*back_to_back(101, 2, S), *back_to_back(102, 2, S)]
        records.append(work("api", 103, 0.0, S))
        records.append(work("api", 103, 0.5 * S, 1.5 * S))  # overlaps the previous one on 103
        verdict = check_serialized_per_pid(scenario("sleep", records))
        assert not verdict.passed
        assert "103:2" in verdict.observed
        assert "101:1" in verdict.observed
        assert verdict.observed.startswith("max overlap per pid 2")

    def test_pipeline_serialization(self) -> None:
        records = [
            work("api", 5, 0, 2, pipeline=(0.1, 1.0), what="generate"),
            work("api", 5, 0, 2, pipeline=(1.0, 1.9), what="generate"),
        ]
        assert check_serialized_per_pid(scenario("generate", records), pipeline=True).passed
        assert not check_serialized_per_pid(scenario("generate", records)).passed
        clash = [
            work("api", 5, 0, 2, pipeline=(0.1, 1.0), what="generate"),
            work("api", 5, 0, 2, pipeline=(0.5, 1.9), what="generate"),
        ]
        verdict = check_serialized_per_pid(scenario("generate", clash), pipeline=True, what="pipeline calls")
        assert not verdict.passed
        assert "pipeline calls" in verdict.expectation


class TestSyncSleepFullOverlap:
    @pytest.mark.parametrize("counts", SPREADS, ids=lambda c: "/".join(map(str, c)))
    def test_passes_when_each_pid_runs_its_requests_at_once(self, counts: tuple[int, ...]) -> None:
        records = [r for pid, n in zip((101, 102, 103), counts, strict=True) for r in together(pid, n, S)]
        verdict = check_full_overlap(scenario("sleep", records))
        assert verdict.passed, verdict.observed

    def test_fails_when_a_pid_ran_them_one_after_another(self) -> None:
        records = [*together(101, 3, S), *back_to_back(102, 2, S), *together(103, 1, S)]
        verdict = check_full_overlap(scenario("sleep", records))
        assert not verdict.passed
        assert "102:1" in verdict.observed

    def test_thread_pool_caps_the_overlap(self) -> None:
        # 50 requests on one pid: 40 at once, then 10 more.
        records = together(101, THREAD_POOL, S) + together(101, 10, S, start_s=S)
        assert check_full_overlap(scenario("sleep", records)).passed

    def test_no_attributed_work_fails(self) -> None:
        assert not check_full_overlap(scenario("sleep", [])).passed

    def test_single_short_request_counts(self) -> None:
        # Shorter than the overlap epsilon: still one request running on its pid.
        assert check_full_overlap(scenario("sleep", [work("api", 101, 0.0, 0.0005)])).passed


class TestGilBound:
    def test_k_requests_taking_k_times_s_pass(self) -> None:
        records = [work("api", 101, 0, 3 * S, what="cpu", index=i) for i in range(3)]
        verdict = check_gil_bound(scenario("cpu", records, seconds=S))
        assert verdict.passed
        assert "101: 3 requests, 3.00 CPU-s in 3.00s" in verdict.observed

    def test_k_requests_taking_s_fail(self) -> None:
        verdict = check_gil_bound(scenario("cpu", together(101, 3, S), seconds=S))
        assert not verdict.passed
        assert "101: 3 requests, 3.00 CPU-s in 1.00s" in verdict.observed

    def test_per_pid(self) -> None:
        # 1 request on another pid needs only S; the busy pid needs 2 x S.
        records = [work("api", 101, 0, 2 * S, index=i) for i in range(2)] + [work("api", 102, 0, S)]
        assert check_gil_bound(scenario("cpu", records, seconds=S)).passed
        records = [work("api", 101, 0, S, index=i) for i in range(2)] + [work("api", 102, 0, S)]
        assert not check_gil_bound(scenario("cpu", records, seconds=S)).passed

    def test_no_attributed_work_fails(self) -> None:
        verdict = check_gil_bound(scenario("cpu", [], seconds=S))
        assert not verdict.passed
        assert verdict.observed == "no attributed work"

    def test_measured_cpu_time_is_the_yardstick(self) -> None:
        # The loop ran faster than calibrated: 3 requests used 1.2 CPU-s, done in 1.3 s on one GIL: fine.
        measured = dataclasses.replace(scenario("cpu", together(101, 3, 1.3), seconds=S), cpu_seconds={"101": 1.2})
        verdict = check_gil_bound(measured)
        assert verdict.passed and "1.20 CPU-s in 1.30s" in verdict.observed
        # ... but 3 CPU-s of work finished in 1.3 s cannot have run on one GIL.
        assert not check_gil_bound(dataclasses.replace(measured, cpu_seconds={"101": 3.0})).passed


class TestCpuParallelism:
    def test_measured_cpu_time_bounds_the_span(self) -> None:
        three = [work("api", 101 + i, 0, 0.8, what="cpu", index=i) for i in range(3)]
        measured = dataclasses.replace(
            scenario("cpu", three, seconds=S), cpu_seconds={"101": 0.5, "102": 0.5, "103": 0.5}
        )
        assert check_cpu_parallelism(measured, workers=3, cores=2).passed  # 1.5 CPU-s in 0.8 s on 2 cores
        over = dataclasses.replace(measured, cpu_seconds={"101": 1.0, "102": 1.0, "103": 1.0})
        assert not check_cpu_parallelism(over, workers=3, cores=2).passed  # 3 CPU-s in 0.8 s: impossible

    def _three(self, span: float) -> list:
        return [work("api", 101 + i, 0, span, what="cpu", index=i) for i in range(3)]

    def test_three_on_three_workers_two_cores_as_fast_as_one_fails(self) -> None:
        verdict = check_cpu_parallelism(scenario("cpu", self._three(1.0 * S), seconds=S), workers=3, cores=2)
        assert not verdict.passed
        assert "floor 1.50s" in verdict.observed
        assert "= 2" in verdict.expectation

    def test_three_on_three_workers_two_cores_in_1_6_s_passes(self) -> None:
        assert check_cpu_parallelism(scenario("cpu", self._three(1.6 * S), seconds=S), workers=3, cores=2).passed

    def test_one_worker_is_one_core(self) -> None:
        records = [work("api", 101, 0, 3 * S, index=i) for i in range(3)]
        verdict = check_cpu_parallelism(scenario("cpu", records, seconds=S), workers=1, cores=8)
        assert verdict.passed
        assert "floor 3.00s" in verdict.observed
        records = [work("api", 101, 0, 1.5 * S, index=i) for i in range(3)]
        assert not check_cpu_parallelism(scenario("cpu", records, seconds=S), workers=1, cores=8).passed

    def test_enough_cores(self) -> None:
        assert check_cpu_parallelism(scenario("cpu", self._three(S), seconds=S), workers=3, cores=4).passed


class TestHealthBlocked:
    def test_answered_after_the_work_passes(self) -> None:
        records = [*back_to_back(101, 2, S), health(101, 0.5, 1.02)]
        verdict = check_health_blocked(scenario("sleep", records))
        assert verdict.passed
        assert verdict.observed.startswith("1 health check(s) reached a blocked worker, 0 answered")

    def test_answered_before_the_end_fails(self) -> None:
        records = [*back_to_back(101, 2, S), health(101, 0.5, 0.55)]
        verdict = check_health_blocked(scenario("sleep", records))
        assert not verdict.passed
        assert "1 answered before its work ended" in verdict.observed

    def test_health_checks_to_other_pids_are_ignored(self) -> None:
        records = [*back_to_back(101, 2, S), health(102, 0.5, 0.51), health(103, 1.5, 1.51)]
        verdict = check_health_blocked(scenario("sleep", records))
        assert verdict.passed
        assert verdict.observed == "no health check reached a blocked worker (others answered)"

    def test_no_health_check_reached_a_blocked_worker_passes(self) -> None:
        assert check_health_blocked(scenario("sleep", back_to_back(101, 2, S))).passed

    def test_failed_and_unattributed_checks_are_ignored(self) -> None:
        records = [*back_to_back(101, 1, S), health(101, 0.5, 0.6, error="timeout"), health(None, 0.5, 0.6)]
        verdict = check_health_blocked(scenario("sleep", records))
        assert verdict.passed
        assert verdict.observed.startswith("no health check")

    def test_sent_at_the_edges_of_the_work_does_not_count(self) -> None:
        # Sent within BLOCK_EPSILON_NS of the start or the end: not "during" the work.
        records = [*back_to_back(101, 1, S), health(101, 0.002, 0.003), health(101, S - 0.002, S - 0.001)]
        verdict = check_health_blocked(scenario("sleep", records))
        assert verdict.passed
        assert verdict.observed.startswith("no health check")

    def test_mixed_answers_fail(self) -> None:
        records = [*back_to_back(101, 2, S), health(101, 0.5, 1.0), health(101, 1.5, 1.6)]
        verdict = check_health_blocked(scenario("sleep", records))
        assert not verdict.passed
        assert verdict.observed.startswith("2 health check(s) reached a blocked worker, 1 answered")


class TestHealthAnsweredDuringWork:
    """Offload CPU: the loop shares the GIL with the CPU thread, so only "not blocked" is predicted."""

    def test_a_slow_check_answered_while_the_work_runs_passes_whatever_its_latency(self) -> None:
        # 400 ms a check: hypercorn's figure under a CPU thread in 4 of 5 default runs; still not blocked. Those
        # sent within 400 ms of a work's end are answered after it (during the next): no sign of a blocked loop.
        records = [*back_to_back(101, 3, S), *(health(101, 0.1 + i * 0.5, 0.5 + i * 0.5) for i in range(5))]
        verdict = check_health_answered_during_work(scenario("cpu", records))
        assert verdict.passed, verdict.observed
        assert verdict.observed.startswith("3 of 5 health check(s) that reached a busy worker answered")

    def test_a_loop_that_answers_only_when_the_work_ends_fails(self) -> None:
        # Ten checks during the first of two works, each answered only when that work ended.
        checks = [health(101, 0.05 + i * S / 11, S + 0.01) for i in range(MIN_CHECKS_REACHING_WORK)]
        verdict = check_health_answered_during_work(scenario("cpu", [*back_to_back(101, 2, S), *checks]))
        assert not verdict.passed
        assert verdict.observed.startswith(f"0 of {MIN_CHECKS_REACHING_WORK} health check(s)")

    def test_fewer_late_checks_than_it_takes_to_tell_do_not_fail(self) -> None:
        # Checks sent just before the work's end are answered after it by any loop: nine late ones prove nothing.
        checks = [health(101, S - 0.02, S + 0.01) for _ in range(MIN_CHECKS_REACHING_WORK - 1)]
        verdict = check_health_answered_during_work(scenario("cpu", [*back_to_back(101, 2, S), *checks]))
        assert verdict.passed
        assert "too few to tell" in verdict.observed

    def test_a_failed_check_fails_and_no_check_at_all_fails(self) -> None:
        failed_check = [*back_to_back(101, 1, S), health(101, 0.1, 0.2), health(101, 0.3, 0.4, error="timeout")]
        assert not check_health_answered_during_work(scenario("cpu", failed_check)).passed
        assert not check_health_answered_during_work(scenario("cpu", list(back_to_back(101, 1, S)))).passed

    def test_checks_that_reached_only_idle_workers_are_said_so(self) -> None:
        records = [*back_to_back(101, 1, S), health(102, 0.5, 0.51)]
        verdict = check_health_answered_during_work(scenario("cpu", records))
        assert verdict.passed
        assert verdict.observed.startswith("no health check reached a busy worker")


class TestHealthFast:
    def test_fast_passes(self) -> None:
        records = [*together(101, 2, S), *(health(101, i * 0.1, i * 0.1 + 0.02) for i in range(10))]
        verdict = check_health_fast(scenario("sleep", records))
        assert verdict.passed
        assert "over 10 checks" in verdict.observed

    def test_one_slow_check_is_reported_but_does_not_fail(self) -> None:
        # A lone slow check is scheduling noise on a shared machine, not a starved loop.
        records = [health(101, i * 0.1, i * 0.1 + 0.02) for i in range(10)] + [health(101, 2.0, 2.5)]
        verdict = check_health_fast(scenario("sleep", records))
        assert verdict.passed
        assert "p99 500.0 ms" in verdict.observed

    def test_a_slow_median_fails(self) -> None:
        records = [health(101, i * 0.1, i * 0.1 + 0.3) for i in range(10)]
        verdict = check_health_fast(scenario("sleep", records))
        assert not verdict.passed
        assert "median 300.0 ms" in verdict.observed

    def test_threshold(self) -> None:
        at = [health(101, 0, HEALTH_FAST_S)]
        over = [health(101, 0, HEALTH_FAST_S + 0.001)]
        assert check_health_fast(scenario("sleep", at)).passed
        assert not check_health_fast(scenario("sleep", over)).passed

    def test_failed_checks_fail(self) -> None:
        records = [health(101, 0, 0.01), health(101, 0.1, 1.1, error="timeout")]
        verdict = check_health_fast(scenario("sleep", records))
        assert not verdict.passed
        assert "1 failed" in verdict.observed

    def test_no_checks_fail(self) -> None:
        assert not check_health_fast(scenario("sleep", together(101, 2, S))).passed


class TestApiNotQueued:
    def _mixed(self, api_wait: float) -> list:
        demo = back_to_back(101, 3, S, kind="demo")
        api = [work("api", 101, 0.1 + api_wait, 0.1 + api_wait + S, sent_s=0.1, index=i) for i in range(3)]
        return demo + api

    def test_start_within_slack_passes(self) -> None:
        verdict = check_api_not_queued(scenario("mixed", self._mixed(0.01)))
        assert verdict.passed
        assert "10 ms over 3 API calls" in verdict.observed

    def test_at_the_slack_passes(self) -> None:
        assert check_api_not_queued(scenario("mixed", self._mixed(DISPATCH_SLACK_S))).passed

    def test_one_second_wait_fails(self) -> None:
        verdict = check_api_not_queued(scenario("mixed", self._mixed(1.0)))
        assert not verdict.passed
        assert "1000 ms" in verdict.observed

    def test_no_api_calls_fail(self) -> None:
        assert not check_api_not_queued(scenario("mixed", back_to_back(101, 3, S, kind="demo"))).passed


class TestDemoQueue:
    def _clicks(self, *errors: str | None) -> list:
        return [
            work("demo", 101, i, i + 1, index=i) if e is None else work("demo", None, None, None, error=e, index=i)
            for i, e in enumerate(errors)
        ]

    def test_one_worker_all_complete(self) -> None:
        verdict = check_demo_queue(scenario("mixed", self._clicks(None, None, None)), workers=1)
        assert verdict.passed
        assert verdict.observed == "3 of 3 completed"

    def test_one_worker_queue_split_fails(self) -> None:
        verdict = check_demo_queue(scenario("mixed", self._clicks(None, "queue_split", None)), workers=1)
        assert not verdict.passed
        assert verdict.observed == "2 of 3 completed"

    def test_three_workers_queue_split_passes(self) -> None:
        verdict = check_demo_queue(scenario("mixed", self._clicks(None, "queue_split", "queue_split")), workers=3)
        assert verdict.passed
        assert verdict.observed.startswith("2 of 3 failed from a split queue, 0 otherwise")

    def test_three_workers_other_error_fails(self) -> None:
        verdict = check_demo_queue(scenario("mixed", self._clicks("queue_split", "timeout", None)), workers=3)
        assert not verdict.passed
        assert "1 otherwise" in verdict.observed

    def test_api_errors_are_not_demo_errors(self) -> None:
        records = [*self._clicks(None), work("api", None, None, None, error="timeout")]
        assert check_demo_queue(scenario("mixed", records), workers=1).passed


class TestOverlapAtMost:
    def test_limit(self) -> None:
        records = together(101, 2, S, kind="demo") + together(101, 2, S, kind="api") + together(102, 4, S)
        kw = {"why": "because", "what": "things"}
        assert check_overlap_at_most(scenario("mixed", records), 4, kinds=WORK_KINDS, **kw).passed
        verdict = check_overlap_at_most(scenario("mixed", records), 3, kinds=WORK_KINDS, **kw)
        assert not verdict.passed
        assert "101:4" in verdict.observed
        assert check_overlap_at_most(scenario("mixed", records), 2, kinds=(Kind.DEMO,), **kw).passed
        assert not check_overlap_at_most(scenario("mixed", records), 1, kinds=(Kind.DEMO,), **kw).passed


def _timeout_run(*, killed: bool, timeout_s: float = 30.0) -> list:
    if killed:
        return [work("api", None, None, None, sent_s=0, received_s=timeout_s + 1, error="disconnected")]
    return [work("api", 101, 0, timeout_s + 3, sent_s=0)]


TIMEOUT_LINE = "[2026-11-27 08:30:34 +0000] [4271] [CRITICAL] WORKER TIMEOUT (pid:4319)"
TIMEOUT_EVENT = LogEvent(kind="worker_timeout", pid=4319, line=TIMEOUT_LINE)
BOOT_EVENT = LogEvent(kind="worker_booted", pid=4400, line="[INFO] Booting worker with pid: 4400")


class TestGunicornTimeout:
    def test_async_killed_and_disconnected_passes(self) -> None:
        result = scenario("timeout", _timeout_run(killed=True), log_events=[TIMEOUT_EVENT, BOOT_EVENT])
        (verdict,) = check_gunicorn_timeout(result, profile("gunicorn-1-async"))
        assert verdict.passed
        assert verdict.observed == "1 WORKER TIMEOUT line(s); request: disconnected"
        assert "timeout=30s" in verdict.expectation

    def test_async_needs_the_timeout_event(self) -> None:
        result = scenario("timeout", _timeout_run(killed=True), log_events=[BOOT_EVENT])
        (verdict,) = check_gunicorn_timeout(result, profile("gunicorn-1-async"))
        assert not verdict.passed

    def test_async_needs_the_request_to_fail(self) -> None:
        result = scenario("timeout", _timeout_run(killed=False), log_events=[TIMEOUT_EVENT])
        (verdict,) = check_gunicorn_timeout(result, profile("gunicorn-3-async"))
        assert not verdict.passed
        assert "HTTP 200 after 33.0s" in verdict.observed

    @pytest.mark.parametrize("mode", ["sync", "offload"])
    def test_sync_completes_without_timeout(self, mode: str) -> None:
        result = scenario("timeout", _timeout_run(killed=False))
        (verdict,) = check_gunicorn_timeout(result, profile(f"gunicorn-1-{mode}"))
        assert verdict.passed
        assert verdict.expectation.startswith(f"{mode} handler sleeping past timeout=30s completes")

    @pytest.mark.parametrize("killed", [True, False])
    def test_sync_fails_on_a_timeout_event(self, killed: bool) -> None:
        result = scenario("timeout", _timeout_run(killed=killed), log_events=[TIMEOUT_EVENT])
        (verdict,) = check_gunicorn_timeout(result, profile("gunicorn-1-sync"))
        assert not verdict.passed

    def test_sync_fails_when_the_request_failed(self) -> None:
        result = scenario("timeout", _timeout_run(killed=True))
        (verdict,) = check_gunicorn_timeout(result, profile("gunicorn-1-sync"))
        assert not verdict.passed

    def test_timeout_events(self) -> None:
        assert ex.timeout_events([BOOT_EVENT, TIMEOUT_EVENT, BOOT_EVENT]) == [TIMEOUT_EVENT]


# --- Which expectations apply, per mode and scenario --------------------------------------------

_NAMES = (
    ("every request completes", "no_errors"),
    ("no worker dies during the burst", "no_worker_lost"),
    ("within one worker process, pipeline calls never overlap", "serialized_pipeline"),
    ("within one worker process, async-blocking work never overlaps", "serialized"),
    ("makespan ~", "serial_makespan"),
    ("/health on a worker with blocking", "health_blocked"),
    ("within one worker process, sleep work overlaps fully", "full_overlap"),
    ("within one worker process, k concurrent CPU", "gil_bound"),
    ("/health stays fast", "health_fast"),
    ("/health is answered while CPU work runs", "health_answered"),
    ("within one worker process, offloaded requests", "limiter"),
    ("within one worker process, demo events overlap at most", "demo_limit"),
    ("CPU parallelism", "cpu_parallelism"),
    ("with one worker every demo click", "demo_queue"),
    ("with several workers demo clicks", "demo_queue"),
    ("API calls are not bound", "api_not_queued"),
    ("async handler blocking past timeout", "timeout_killed"),
    ("sync handler sleeping past timeout", "timeout_completes"),
    ("offload handler sleeping past timeout", "timeout_completes"),
)


def _name(verdict: Verdict) -> str:
    for prefix, name in _NAMES:
        if verdict.expectation.startswith(prefix):
            return name
    raise AssertionError(f"unknown expectation {verdict.expectation!r}")


EXPECTED = {
    ("async", "sleep"): {"no_errors", "no_worker_lost", "serialized", "serial_makespan", "health_blocked"},
    ("async", "cpu"): {"no_errors", "no_worker_lost", "serialized", "health_blocked", "cpu_parallelism"},
    ("async", "generate"): {"no_errors", "no_worker_lost", "serialized_pipeline", "serialized", "health_blocked"},
    ("async", "mixed"): {"no_errors", "no_worker_lost", "serialized", "health_blocked", "demo_queue"},
    ("sync", "sleep"): {"no_errors", "no_worker_lost", "full_overlap", "health_fast"},
    ("sync", "cpu"): {"no_errors", "no_worker_lost", "gil_bound", "cpu_parallelism"},
    ("sync", "generate"): {"no_errors", "no_worker_lost", "serialized_pipeline", "health_fast"},
    ("sync", "mixed"): {"no_errors", "no_worker_lost", "health_fast", "demo_queue", "demo_limit", "api_not_queued"},
    ("offload", "sleep"): {"no_errors", "no_worker_lost", "limiter", "health_fast"},
    ("offload", "cpu"): {"no_errors", "no_worker_lost", "limiter", "health_answered", "cpu_parallelism"},
    ("offload", "generate"): {"no_errors", "no_worker_lost", "serialized_pipeline", "limiter", "health_fast"},
    ("offload", "mixed"): {"no_errors", "no_worker_lost", "limiter", "health_fast", "demo_queue", "demo_limit"},
}


@pytest.mark.parametrize("name", list(builtin_profiles()))
@pytest.mark.parametrize("scenario_name", ["sleep", "cpu", "generate", "mixed"])
def test_expectations_per_mode_and_scenario(name: str, scenario_name: str) -> None:
    chosen = profile(name)
    polled = [*spread([2, 1], S), health(101, 0.1, 0.11)]
    verdicts = expectations(chosen, scenario(scenario_name, polled), cores=2)
    names = [_name(v) for v in verdicts]
    assert len(names) == len(set(names)), names
    expected = EXPECTED[chosen.mode, scenario_name]
    if chosen.mode == "offload" and scenario_name == "cpu" and chosen.workers > 1:
        # Several processes: the checks reach idle ones too, and /health stays fast.
        expected = (expected - {"health_answered"}) | {"health_fast"}
    assert set(names) == expected
    assert all(v.scenario == scenario_name for v in verdicts)


@pytest.mark.parametrize("name", [n for n in builtin_profiles() if n.startswith("gunicorn-")])
def test_expectations_timeout(name: str) -> None:
    chosen = profile(name)
    verdicts = expectations(chosen, scenario("timeout", _timeout_run(killed=chosen.mode == "async")), cores=2)
    assert [_name(v) for v in verdicts] == ["timeout_killed" if chosen.mode == "async" else "timeout_completes"]


@pytest.mark.parametrize(("workers", "allowed"), [(1, False), (3, True)])
def test_mixed_tolerates_a_split_queue_only_with_several_workers(workers: int, allowed: bool) -> None:
    chosen = profile(f"uvicorn-{workers}-sync")
    no_errors = expectations(chosen, scenario("mixed", []), cores=2)[0]
    assert ("queue_split" in no_errors.expectation) is allowed
    sleep = expectations(chosen, scenario("sleep", []), cores=2)[0]
    assert "queue_split" not in sleep.expectation


def test_limits_come_from_the_profile() -> None:
    chosen = profile("uvicorn-1-offload", limiter=2, concurrency_limit=3)
    records = together(101, 2, S, kind="api") + together(101, 3, S, kind="demo")
    verdicts = {_name(v): v for v in expectations(chosen, scenario("mixed", records), cores=2)}
    assert "at most 2" in verdicts["limiter"].expectation
    assert not verdicts["limiter"].passed  # 5 offloaded at once on one pid
    assert "at most 3" in verdicts["demo_limit"].expectation
    assert verdicts["demo_limit"].passed


def test_ideal_sync_mixed_burst_passes_everything() -> None:
    # One sync worker, concurrency_limit 1: demo clicks one after another, API calls at once beside them.
    demo = back_to_back(101, 3, S, kind="demo")
    api = [work("api", 101, 0.05, 0.05 + S, sent_s=0.0, index=i) for i in range(3)]
    checks = [health(101, i * 0.1, i * 0.1 + 0.01) for i in range(30)]
    verdicts = expectations(profile("uvicorn-1-sync"), scenario("mixed", demo + api + checks), cores=2)
    assert [v for v in verdicts if not v.passed] == []


def test_ideal_async_mixed_burst_passes_everything() -> None:
    # 3 async workers: each pid serializes; a demo click lost to a split queue is tolerated.
    records = [
        *back_to_back(101, 2, S, kind="demo"),
        *back_to_back(102, 2, S),
        work("demo", None, None, None, error="queue_split"),
        health(101, 0.5, 1.0),
        health(103, 0.5, 0.51),
    ]
    verdicts = expectations(profile("gunicorn-3-async"), scenario("mixed", records), cores=2)
    assert [v for v in verdicts if not v.passed] == []


def test_thread_pool_queueing_past_forty_threads() -> None:
    # 100 sleeps on one sync worker: 40 at a time, so three waves of S.
    waves = [
        work("api", 101, wave * S, (wave + 1) * S, sent_s=0.0, index=wave * 40 + i)
        for wave in range(3)
        for i in range(40 if wave < 2 else 20)
    ]
    verdict = check_thread_pool_queueing(scenario("sleep", waves))
    assert verdict is not None and verdict.passed, verdict
    assert "101: 100 requests" in verdict.observed
    squeezed = [work("api", 101, 0.0, S, sent_s=0.0, index=i) for i in range(100)]
    verdict = check_thread_pool_queueing(scenario("sleep", squeezed))
    assert verdict is not None and not verdict.passed
    assert check_thread_pool_queueing(scenario("sleep", together(101, 40, S))) is None


def test_a_lost_worker_is_named() -> None:
    events = (
        LogEvent(
            kind="worker_killed", pid=202, line="[ERROR] Worker (pid:202) was sent SIGKILL! Perhaps out of memory?"
        ),
        LogEvent(kind="worker_died", pid=202, line="launch: worker 202 exited without stopping"),
    )
    lost = dataclasses.replace(scenario("sleep", together(101, 2, S)), log_events=events)
    verdict = check_no_worker_lost(lost)
    assert not verdict.passed
    assert "202" in verdict.observed and "SIGKILL" in verdict.observed
    assert check_no_worker_lost(scenario("sleep", together(101, 2, S))).passed


def test_liveness_is_judged_only_where_health_was_polled() -> None:
    unpolled = expectations(profile("uvicorn-1-offload"), scenario("sleep", together(101, 1, S)), cores=2)
    assert not any("/health" in v.expectation for v in unpolled)
    polled = expectations(
        profile("uvicorn-1-offload"), scenario("sleep", [*together(101, 1, S), health(101, 0.1, 0.11)]), cores=2
    )
    assert any("/health" in v.expectation for v in polled)
