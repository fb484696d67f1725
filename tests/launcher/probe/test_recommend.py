"""Which profile to deploy, over synthetic results."""

from __future__ import annotations

from launcher.probe.model import ProfileResult
from launcher.probe.recommend import recommend, rejection, total_makespan
from tests.launcher.probe.records import back_to_back, failed, health, passed, result, scenario, work

S = 1.0


def _good(name: str, *, makespan: float = 2.0, extra: tuple = ()) -> ProfileResult:
    """A profile whose mixed burst (2 demo clicks back to back on one pid) took ``makespan`` seconds."""
    step = makespan / 2
    records = [
        work("demo", 101, 0.0, step, sent_s=0.0, received_s=step),
        work("demo", 101, step, makespan, sent_s=0.0, received_s=makespan),
        health(101, 0.1, 0.12),
    ]
    return result(name, [scenario("mixed", records, verdicts=[passed("mixed")]), *extra])


class TestRejection:
    def test_good_profile_qualifies(self) -> None:
        assert rejection(_good("uvicorn-1-offload")) is None

    def test_did_not_start(self) -> None:
        assert rejection(result("uvicorn-1-sync", status="did_not_start", error="port in use")) == (
            "status did_not_start: port in use"
        )
        assert rejection(result("uvicorn-1-sync", status="interrupted")) == "status interrupted"

    def test_failed_verdict(self) -> None:
        bad = result(
            "uvicorn-1-async",
            [scenario("mixed", back_to_back(101, 1, S), verdicts=[passed(), failed("mixed", "health stays fast")])],
        )
        assert rejection(bad) == "expectation failed: health stays fast (no)"

    def test_queue_split_demo_error(self) -> None:
        records = [*back_to_back(101, 1, S, kind="demo"), work("demo", None, None, None, error="queue_split")]
        bad = result("uvicorn-3-offload", [scenario("mixed", records, verdicts=[passed()])])
        assert rejection(bad) == "mixed: requests failed (queue_split=1)"

    def test_failed_requests_in_any_burst(self) -> None:
        sleep = scenario("sleep", [work("api", None, None, None, error="timeout"), work("api", 1, 0, 1, status=502)])
        reason = rejection(_good("uvicorn-1-sync", extra=(sleep,)))
        assert reason == "sleep: requests failed (http_502=1, timeout=1)"

    def test_failures_in_the_timeout_scenario_do_not_count(self) -> None:
        timeout = scenario("timeout", [work("api", None, None, None, error="disconnected")])
        assert rejection(_good("gunicorn-1-async", extra=(timeout,))) is None

    def test_slow_health(self) -> None:
        sleep = scenario("sleep", [*back_to_back(101, 2, S), health(101, 0.5, 1.0)])
        assert rejection(_good("uvicorn-1-async", extra=(sleep,))) == "sleep: liveness lost (/health p99 500 ms)"

    def test_health_at_the_threshold_is_fast_enough(self) -> None:
        sleep = scenario("sleep", [*back_to_back(101, 2, S), health(101, 0.5, 0.6)])
        assert rejection(_good("uvicorn-1-sync", extra=(sleep,))) is None

    def test_generate_not_serialized(self) -> None:
        records = [
            work("api", 101, 0, 2, pipeline=(0.1, 1.5), what="generate"),
            work("api", 101, 0, 2, pipeline=(0.5, 1.9), what="generate"),
        ]
        generate = scenario("generate", records)
        assert rejection(_good("uvicorn-1-sync", extra=(generate,))) == (
            "generate: model access not serialized (overlap 2)"
        )

    def test_demo_not_exercised(self) -> None:
        only_sleep = result("uvicorn-1-sync", [scenario("sleep", back_to_back(101, 1, S))])
        assert rejection(only_sleep) == "demo not exercised (no mixed scenario)"


class TestRecommend:
    def test_none_when_nothing_qualifies(self) -> None:
        assert recommend([]) is None
        assert recommend([result("uvicorn-1-sync", status="did_not_start")]) is None

    def test_smallest_total_makespan_wins(self) -> None:
        slow = _good("uvicorn-1-offload", makespan=4.0)
        fast = _good("gunicorn-3-offload", makespan=2.5)
        broken = result("uvicorn-1-async", [scenario("mixed", [], verdicts=[failed("mixed")])])
        rec = recommend([slow, broken, fast])
        assert rec is not None
        assert rec.profile["name"] == "gunicorn-3-offload"
        assert rec.ready_seconds == 1.0
        assert "(2.50s) of 2 qualifying profile(s)" in rec.why
        assert rec.rejected["uvicorn-1-offload"] == "qualified, but slower: total makespan 4.00s vs 2.50s"
        assert rec.rejected["uvicorn-1-async"].startswith("expectation failed")
        assert set(rec.rejected) == {"uvicorn-1-offload", "uvicorn-1-async"}

    def test_total_makespan_sums_bursts_but_not_the_timeout(self) -> None:
        sleep = scenario("sleep", back_to_back(101, 3, S))  # sent at 0, last answered at 3.01
        timeout = scenario("timeout", [work("api", 101, 0, 33, sent_s=0, received_s=33)])
        profile_result = _good("gunicorn-1-sync", makespan=2.0, extra=(sleep, timeout))
        assert abs(total_makespan(profile_result) - 5.01) < 1e-9

    def test_a_failed_but_faster_profile_loses(self) -> None:
        fast_but_split = _good("uvicorn-3-sync", makespan=1.0)
        records = [*fast_but_split.scenarios[0].records, work("demo", None, None, None, error="queue_split")]
        fast_but_split = result("uvicorn-3-sync", [scenario("mixed", records, verdicts=[passed()])])
        rec = recommend([fast_but_split, _good("uvicorn-1-offload", makespan=3.0)])
        assert rec is not None
        assert rec.profile["name"] == "uvicorn-1-offload"
        assert rec.rejected == {"uvicorn-3-sync": "mixed: requests failed (queue_split=1)"}
