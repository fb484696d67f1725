"""Pure parts of the capacity sweep: schedule, latency from scheduled times, the knee search, sizing, JSON."""

from __future__ import annotations

import itertools
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from launcher.capacity.model import (
    MAX_REQUESTS_PER_STEP,
    CapacityFileError,
    CapacityRun,
    ProfileCapacity,
    Sample,
    SearchPolicy,
    bracket,
    busy_fraction,
    dump_run,
    knee,
    next_rate,
    parse_duration,
    parse_rate,
    run_from_json,
    scaling_notes,
    schedule,
    size,
    summarize_step,
)
from launcher.capacity.report import chart_svg, render_html
from launcher.errors import ConfigError
from launcher.probe.model import Status
from profiles import Profile

MS = 1_000_000


@pytest.mark.parametrize(
    ("text", "seconds"), [("2s", 2.0), ("500ms", 0.5), ("0.5", 0.5), (" 1.5 s ", 1.5), ("1m", 60.0), (".25s", 0.25)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "2 hours", "-1s", "0s", "s", "1e3s"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_duration(text)


@pytest.mark.parametrize(("text", "rate"), [("5/s", 5.0), ("300/min", 5.0), ("5", 5.0), ("0.5/s", 0.5), ("7200/h", 2)])
def test_parse_rate(text: str, rate: float) -> None:
    assert parse_rate(text) == pytest.approx(rate)


@pytest.mark.parametrize("text", ["", "5/day", "fast", "0/s", "-2/s"])
def test_parse_rate_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_rate(text)


@settings(deadline=None)  # a shared machine: timing is not what is tested
@given(rate=st.floats(0.01, 5000), seconds=st.floats(0.01, 60))
def test_schedule_is_evenly_spaced_bounded_and_inside_the_step(rate: float, seconds: float) -> None:
    offsets = schedule(rate, seconds)
    assert 1 <= len(offsets) <= MAX_REQUESTS_PER_STEP
    assert len(offsets) == max(1, min(MAX_REQUESTS_PER_STEP, math.floor(rate * seconds + 1e-9)))
    assert offsets[0] == 0.0
    assert all(math.isclose(b - a, 1 / rate, rel_tol=1e-6) for a, b in itertools.pairwise(offsets))
    if len(offsets) > 1:
        assert offsets[-1] < seconds


def _sample(i: int, scheduled_ms: float, sent_ms: float, received_ms: float, **kw: object) -> Sample:
    return Sample(
        index=i,
        scheduled_ns=round(scheduled_ms * MS),
        sent_ns=round(sent_ms * MS),
        received_ns=round(received_ms * MS),
        status=kw.pop("status", 200),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


def test_percentiles_count_from_the_scheduled_time_not_the_send() -> None:
    # 100 requests due every 10 ms; the generator sent the last 10 one second late
    # (it was stalled), and each took 5 ms once sent.
    samples = []
    for i in range(100):
        due = i * 10.0
        sent = due + (1000.0 if i >= 90 else 0.0)
        samples.append(_sample(i, due, sent, sent + 5))
    step = summarize_step(samples, rate=100, seconds=1.0, scheduled=100, started_ns=0, target_s=0.5)
    assert step.p50_s == pytest.approx(0.005)
    assert step.p99_s == pytest.approx(1.005)
    assert step.p99_from_sent_s == pytest.approx(0.005)  # what a client timing from the send would claim
    assert step.send_lag_p99_s == pytest.approx(1.0)
    assert not step.passed and "p99 1.005 s > target" in step.why


def test_a_step_passes_only_when_it_keeps_up_and_has_no_errors() -> None:
    ok = [
        _sample(i, i * 50.0, i * 50.0, i * 50.0 + 20, pid=7, start_ns=(i * 50 + 5) * MS, end_ns=(i * 50 + 15) * MS)
        for i in range(20)
    ]
    step = summarize_step(ok, rate=20, seconds=1.0, scheduled=20, started_ns=0, target_s=0.1, worker_pids=[7, 8])
    assert step.passed, step.why
    assert step.achieved_rate == pytest.approx(20, rel=0.01)
    assert step.utilisation == {"7": pytest.approx(0.2), "8": 0.0}

    failed = [*ok[:-1], _sample(19, 950.0, 950.0, 960.0, status=None, error="reset")]
    step = summarize_step(failed, rate=20, seconds=1.0, scheduled=20, started_ns=0, target_s=0.1)
    assert not step.passed and step.errors == 1 and step.error_kinds == {"reset": 1}

    # Answers at 10/s for arrivals at 20/s: under the target so far, but a queue grows.
    slow = [_sample(i, i * 50.0, i * 50.0, i * 100.0 + 20) for i in range(20)]
    step = summarize_step(slow, rate=20, seconds=1.0, scheduled=20, started_ns=0, target_s=5.0)
    assert not step.passed and "a queue grows" in step.why

    step = summarize_step(ok[:10], rate=20, seconds=1.0, scheduled=20, started_ns=0, target_s=0.1)
    assert not step.passed and "only 10 of 20 sent" in step.why


@settings(deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 10_000)), max_size=30))
def test_busy_fraction_is_a_share_of_the_window(pairs: list[tuple[int, int]]) -> None:
    intervals = [(min(a, b), max(a, b)) for a, b in pairs]
    share = busy_fraction(intervals, (1000, 9000))
    assert 0.0 <= share <= 1.0
    clipped = sum(max(0, min(b, 9000) - max(a, 1000)) for a, b in intervals)
    assert share * 8000 <= clipped + 1e-6  # a union never exceeds the sum
    assert busy_fraction([*intervals, (0, 10_000)], (1000, 9000)) == 1.0


def test_busy_fraction_counts_overlap_once() -> None:
    assert busy_fraction([(0, 50), (25, 75), (90, 100)], (0, 100)) == pytest.approx(0.85)


# --- the knee search -----------------------------------------------------------


def _search(threshold: float, policy: SearchPolicy) -> list[tuple[float, bool]]:
    """Run the search against a server that passes exactly the rates up to ``threshold``."""
    history: list[tuple[float, bool]] = []
    for _ in range(1000):
        rate = next_rate(history, policy)
        if rate is None:
            return history
        history.append((rate, rate <= threshold))
    raise AssertionError("the search did not end")


policies = st.builds(
    SearchPolicy,
    start=st.floats(0.1, 10),
    factor=st.floats(1.2, 4),
    max_rate=st.floats(10, 2000),
    bisections=st.integers(0, 8),
    tolerance=st.floats(0.01, 0.3),
)


@settings(max_examples=300, deadline=None)
@given(threshold=st.floats(0.0, 3000), policy=policies)
def test_knee_search_is_bounded_and_never_overstates(threshold: float, policy: SearchPolicy) -> None:
    history = _search(threshold, policy)
    assert 1 <= len(history) <= policy.max_steps
    assert all(0 < rate <= policy.max_rate for rate, _ in history)
    assert len({rate for rate, _ in history}) == len(history)  # never holds a rate twice
    found = knee(history)
    if found is not None:
        assert found <= threshold
    lo, hi = bracket(history)
    if not math.isinf(hi):
        assert lo <= threshold < hi
    elif found is not None:
        assert found == pytest.approx(policy.max_rate)  # capped: every step passed


@settings(max_examples=300, deadline=None)
@given(a=st.floats(0.0, 3000), b=st.floats(0.0, 3000), policy=policies)
def test_knee_search_is_monotone_in_the_servers_capacity(a: float, b: float, policy: SearchPolicy) -> None:
    low, high = sorted((a, b))
    assert (knee(_search(low, policy)) or 0.0) <= (knee(_search(high, policy)) or 0.0)


def test_knee_search_narrows_to_the_tolerance_given_enough_bisections() -> None:
    policy = SearchPolicy(start=1, factor=2, max_rate=1000, bisections=10, tolerance=0.05)
    history = _search(21.0, policy)
    assert [r for r, _ in history][:6] == [1, 2, 4, 8, 16, 32]
    lo, hi = bracket(history)
    assert hi / lo <= 1.05 and lo <= 21 < hi


def test_a_profile_that_misses_at_the_start_rate_is_searched_downwards() -> None:
    history = _search(0.3, SearchPolicy(start=1, factor=2, bisections=4))
    assert history[0] == (1, False)
    assert knee(history) is not None and knee(history) <= 0.3  # type: ignore[operator]


# --- sizing, scaling and the result file -----------------------------------------


def _profile(name: str, workers: int, knee_value: float | None, **kw: object) -> ProfileCapacity:
    backend, _, mode = name.split("-")
    return ProfileCapacity(
        profile=Profile(name=name, backend=backend, mode=mode, workers=workers),
        source=None,
        status=Status.OK,
        workers=workers,
        knee=knee_value,
        **kw,  # type: ignore[arg-type]
    )


def test_sizing_from_the_best_profiles_knee_per_worker() -> None:
    one, three = _profile("uvicorn-1-offload", 1, 3.0), _profile("uvicorn-3-offload", 3, 5.4)
    sizing = size([one, three], target_rate=5.0, cores=2)
    assert sizing is not None
    assert (sizing.profile, sizing.workers_needed, sizing.replicas_needed) == ("uvicorn-3-offload", 3, 1)
    assert not sizing.fits_cores and "not enough (3 workers > 2 cores)" in sizing.text and "No GPU" in sizing.text
    gpu = size(
        [_profile("uvicorn-1-offload", 1, 3.0, gpu_memory_mib={"11": 900.0})],
        target_rate=5.0,
        cores=16,
        gpu_memory_mib=4000.0,
    )
    assert gpu is not None and gpu.copies_fit == 4 and gpu.fits_gpu and gpu.workers_needed == 2
    assert size([_profile("uvicorn-1-offload", 1, None)], target_rate=5.0, cores=2) is None


def test_scaling_notes_state_the_band() -> None:
    notes = scaling_notes([_profile("uvicorn-1-offload", 1, 3.0), _profile("uvicorn-3-offload", 3, 5.4)], cores=2)
    assert notes == [
        "uvicorn-3-offload knee 5.4/s = 1.80x uvicorn-1-offload's 3/s: within 1x-2x (min(3 workers, 2 cores))."
    ]
    outside = scaling_notes([_profile("uvicorn-1-offload", 1, 3.0), _profile("uvicorn-3-offload", 3, 9.0)], cores=2)
    assert "OUTSIDE 1x-2x" in outside[0]


def _run() -> CapacityRun:
    samples = [
        _sample(i, i * 100.0, i * 100.0, i * 100.0 + 30, pid=5, start_ns=i * 100 * MS, end_ns=(i * 100 + 25) * MS)
        for i in range(10)
    ]
    step = summarize_step(samples, rate=10, seconds=1, scheduled=10, started_ns=0, target_s=0.5, worker_pids=[5])
    profile = _profile("uvicorn-1-offload", 1, 10.0, steps=(step,), pids=(5,))
    return CapacityRun(
        created="2026-01-01T00:00:00+00:00",
        machine={"cores": 2, "gpu": None, "gpu_note": "no GPU"},
        options={"route": "/test1?seconds=0.025", "p99_target_s": 0.5, "step_seconds": 1, "target_rate": 25},
        profiles=(profile,),
        sizing=size([profile], target_rate=25, cores=2),
    )


def test_result_file_round_trips_and_refuses_foreign_or_newer_files() -> None:
    run = _run()
    text = dump_run(run)
    data = json.loads(text)
    assert (data["schema"], data["schema_version"]) == ("launch.capacity", 1)
    assert run_from_json(data) == run
    with pytest.raises(CapacityFileError, match="not a launch capacity result"):
        run_from_json({"schema": "launch.probe", "schema_version": 1})
    with pytest.raises(CapacityFileError, match="newer"):
        run_from_json({**data, "schema_version": 2})
    with pytest.raises(CapacityFileError, match="malformed"):
        run_from_json({"schema": "launch.capacity", "schema_version": 1})


def test_html_is_self_contained_with_one_line_per_profile() -> None:
    page = render_html(_run())
    assert (
        "<svg" in page
        and "<script" not in page.lower()
        and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    )
    assert page.count("<polyline") == 2  # p50 and p99 of the one profile
    assert "uvicorn-1-offload" in page and "Sizing: 25/s" in page
    assert chart_svg((), 1.0).startswith("<p>")
