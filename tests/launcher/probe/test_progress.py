"""The probe's progress display: plain lines for logs, a live display for terminals, nothing when quiet."""

from __future__ import annotations

import io
import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from launcher.probe.progress import MIN_LEFT_SECONDS, ProbeProgress, ProgressState, describe, format_duration
from launcher.probe.runner import ProgressEvent


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def event(index: int, phase: str, detail: str = "", expected: float = 0.0, total: int = 3) -> ProgressEvent:
    return ProgressEvent(
        index=index, total=total, profile=f"p{index}", phase=phase, detail=detail, expected_seconds=expected
    )


def text_of(display: ProbeProgress) -> str:
    out = Console(file=io.StringIO(), width=120, color_system=None)
    out.print(display.renderable())
    assert isinstance(out.file, io.StringIO)
    return out.file.getvalue()


def display_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "launch-progress" or type(t).__name__ == "_RefreshThread"]


def cursor_restored(output: str) -> bool:
    return output.rfind("\x1b[?25h") > output.rfind("\x1b[?25l") >= 0


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (4.4, "4s"), (59.4, "59s"), (61, "1m01s"), (3599, "59m59s"), (3720, "1h02m")]
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_describe() -> None:
    assert describe(event(1, "starting")) == "starting the server"
    assert describe(event(1, "sleep", "3 requests", 1.0)) == "sleep (3 requests, at least 1s each)"
    assert describe(event(1, "did_not_start", "port in use")) == "did not start: port in use"
    assert describe(event(1, "done", "passed")) == "done: passed"


class TestEstimate:
    def test_unknown_before_the_first_profile_ends(self) -> None:
        state = ProgressState(started=0.0)
        assert state.remaining(5.0) is None
        state.feed(event(1, "starting"), 1.0)
        assert state.remaining(5.0) is None

    def test_mean_time_per_profile_times_what_is_left(self) -> None:
        state = ProgressState(started=0.0)
        state.feed(event(1, "starting"), 0.0)
        state.feed(event(1, "done", "passed"), 10.0)
        assert state.remaining(10.0) == pytest.approx(20.0)
        state.feed(event(2, "starting"), 10.0)
        # 4 s into profile 2 of 3: 2 left at 10 s each, less the 4 s spent.
        assert state.remaining(14.0) == pytest.approx(16.0)
        # Overrunning the mean never gives a negative estimate.
        assert state.remaining(60.0) == pytest.approx(10.0)
        state.feed(event(2, "done", "passed"), 30.0)
        state.feed(event(3, "starting"), 30.0)
        state.feed(event(3, "done", "failed"), 45.0)
        assert state.remaining(45.0) == 0.0

    def test_phase_fraction(self) -> None:
        state = ProgressState(started=0.0)
        state.feed(event(1, "sleep", "3 requests", 2.0), 10.0)
        assert state.phase_fraction(11.0) == pytest.approx(0.5)
        assert state.phase_fraction(15.0) == 1.0
        state.feed(event(1, "stopping"), 15.0)
        assert state.phase_fraction(16.0) is None


@dataclass(frozen=True)
class Timing:
    """One profile's phases, in seconds: its server's start, its bursts, its stop."""

    start: float
    bursts: float
    stop: float


def overlapped_run(timings: list[Timing]) -> tuple[list[tuple[float, ProgressEvent]], float]:
    """The events of a run as the runner emits them when stops run in the background, and when it ends.

    As ``launcher.probe.runner.probe_profile`` with ``_Stopping``: profile k+1 starts the moment profile k's
    bursts end, while k stops in a thread; k+1's bursts wait for k's stop (and for its own start), and k's
    ``done`` comes then. So profile k+1's ``starting`` comes before profile k's ``stopping`` and ``done``.
    """
    total = len(timings)
    events: list[tuple[float, ProgressEvent]] = []
    now, stopped = 0.0, 0.0  # when the previous profile's stop ends
    for index, timing in enumerate(timings, start=1):
        events.append((now, event(index, "starting", total=total)))
        if index > 1:
            events.append((now, event(index - 1, "stopping", total=total)))
        ready = max(now + timing.start, stopped)
        if index > 1:
            events.append((ready, event(index - 1, "done", "passed", total=total)))
        half = timing.bursts / 2
        events.append((ready, event(index, "sleep", "3 requests", half, total=total)))
        events.append((ready + half, event(index, "cpu", "3 requests", half, total=total)))
        now = ready + timing.bursts
        stopped = now + timing.stop
    events.append((now, event(total, "stopping", total=total)))
    events.append((stopped, event(total, "done", "passed", total=total)))
    return events, stopped


def estimates(timings: list[Timing]) -> list[tuple[float, float | None, float, bool]]:
    """(time, estimate, true time left, whether a profile is still to start) at every event and between."""
    events, end = overlapped_run(timings)
    last_start = max(at for at, e in events if e.phase == "starting")
    state = ProgressState(started=0.0)
    seen: list[tuple[float, float | None, float, bool]] = []
    for position, (at, item) in enumerate(events):
        state.feed(item, at)
        following = events[position + 1][0] if position + 1 < len(events) else at
        for now in (at, (at + following) / 2):
            seen.append((now, state.remaining(now), end - now, now < last_start))
    return seen


class TestEstimateWithOverlappedStops:
    """Profile k's ``stopping`` and ``done`` come after profile k+1's ``starting``."""

    def test_a_30_profile_run_is_estimated_from_the_second_start_on(self) -> None:
        timings = [Timing(start=5.0, bursts=30.0, stop=3.0)] * 30
        events, end = overlapped_run(timings)
        # Profile 2 starts before profile 1 stops and is done.
        phases = [e.phase for _, e in events[:8]]
        assert phases == ["starting", "sleep", "cpu", "starting", "stopping", "done", "sleep", "cpu"]
        state = ProgressState(started=0.0)
        for at, item in events:
            state.feed(item, at)
            left = state.remaining(at)
            if item.phase == "done" and item.index == 1:
                # The moment the old estimator said "about 0s left": 29 profiles of 35 s are still to come.
                assert left is not None and 29 * 35 * 0.9 < left < 29 * 35 * 1.1, left
            if left is not None and at < end:
                assert end - at <= 2 * left and left <= 2 * (end - at), (at, item, left, end - at)
        assert state.remaining(end) == 0.0
        # Each profile's own time runs from its own start to its own done, overlap included.
        assert state.own_seconds[1] == pytest.approx(40.0) and state.own_seconds[30] == pytest.approx(38.0)
        assert state.interval() == pytest.approx(35.0)

    def test_the_display_stays_on_the_profile_that_runs(self) -> None:
        state = ProgressState(started=0.0)
        state.feed(event(1, "starting"), 0.0)
        state.feed(event(1, "sleep", "3 requests", 5.0), 4.0)
        state.feed(event(2, "starting"), 10.0)
        state.feed(event(1, "stopping"), 10.1)
        state.feed(event(1, "done", "passed"), 14.0)
        assert state.event is not None and (state.event.index, state.event.phase) == (2, "starting")
        assert state.phase_started == 10.0
        state.feed(event(2, "sleep", "3 requests", 5.0), 14.0)
        assert state.event.phase == "sleep" and state.ready == {1: 4.0, 2: 4.0}

    def test_a_profile_that_did_not_start_keeps_its_own_error(self) -> None:
        clock = Clock()
        console, err = TestLive.console()
        with ProbeProgress(console, mode="live", clock=clock) as display:
            display.update(event(1, "starting"))
            clock.now += 10
            display.update(event(2, "starting"))
            display.update(event(2, "did_not_start", "port in use"))
            display.update(event(2, "done", "failed"))
            clock.now += 2
            display.update(event(1, "done", "passed"))  # profile 1's stop ends after profile 2 gave up
        lines = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", err.getvalue()).splitlines()
        assert "✗ [2/3] p2: did not start: port in use (0s)" in lines
        assert "✓ [1/3] p1: passed (12s)" in lines

    def test_lines_say_what_is_left_when_a_stop_ends_after_the_next_start(self) -> None:
        clock = Clock()
        err = io.StringIO()
        display = ProbeProgress(Console(file=err, width=100), mode="lines", clock=clock)
        display.start()
        for index in (1, 2, 3):
            display.update(event(index, "starting"))
            if index > 1:
                clock.now += 5
                display.update(event(index - 1, "done", "passed"))
            clock.now += 25
        clock.now += 5
        display.update(event(3, "done", "passed"))
        assert [line.split("] ", 2)[2] for line in err.getvalue().splitlines()] == [
            "p1: starting the server",
            "p2: starting the server",
            # 5 s into p2: 20 s more of it (p1 started p2 25 s after its own start), then p3, as long as
            # p1 took from its start to its done (30 s). True: 60 s.
            "p1: done: passed; about 50s left",
            "p3: starting the server",
            # 5 s into p3, the last: as long as p1 and p2 took (30 s, 35 s), less 5 s. True: 30 s.
            "p2: done: passed; about 28s left",
            "p3: done: passed",
        ]

    def test_the_timeout_scenarios_at_the_end(self) -> None:
        state = ProgressState(started=0.0)
        for index in (1, 2):
            state.feed(event(index, "starting", total=2), 40.0 * (index - 1))
            state.feed(event(index, "sleep", "3 requests", 10.0, total=2), 40.0 * (index - 1) + 5)
        state.feed(event(1, "done", "passed", total=2), 45.0)
        state.feed(event(2, "done", "passed", total=2), 80.0)
        assert state.remaining(80.0) == 0.0  # nothing said yet about timeout scenarios
        # Then both profiles' timeout scenarios, side by side on fresh servers: about a profile's time.
        state.feed(event(1, "timeout", "1 request on a fresh server, side by side with 1 other(s)", total=2), 80.0)
        state.feed(event(2, "timeout", "1 request on a fresh server, side by side with 1 other(s)", total=2), 80.0)
        assert state.remaining(80.0) == pytest.approx(42.5)  # own times 45 s and 40 s
        assert state.remaining(100.0) == pytest.approx(22.5)
        assert state.remaining(500.0) == MIN_LEFT_SECONDS  # overdue, not done
        state.feed(event(1, "done", "timeout scenario merged", total=2), 130.0)
        assert state.remaining(130.0) == MIN_LEFT_SECONDS
        state.feed(event(2, "done", "timeout scenario merged", total=2), 130.0)
        assert state.remaining(130.0) == 0.0
        assert state.own_seconds == {1: 45.0, 2: 40.0}  # the second done is not a profile's end

    def test_a_timeout_scenario_that_says_how_long_it_takes(self) -> None:
        state = ProgressState(started=0.0)
        state.feed(event(1, "starting", total=1), 0.0)
        state.feed(event(1, "sleep", "3 requests", 10.0, total=1), 6.0)
        state.feed(event(1, "done", "passed", total=1), 20.0)
        state.feed(event(1, "timeout", "1 request", 35.0, total=1), 20.0)
        # The profile's start (6 s), the 35 s request, and its stop (about a start).
        assert state.remaining(20.0) == pytest.approx(47.0)

    def test_a_second_done_is_no_verdict(self) -> None:
        console, err = TestLive.console()
        with ProbeProgress(console, mode="live") as display:
            display.update(event(1, "starting", total=1))
            display.update(event(1, "done", "passed", total=1))
            display.update(event(1, "timeout", "1 request on a fresh server", total=1))
            display.update(event(1, "done", "timeout scenario merged", total=1))
        lines = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", err.getvalue()).splitlines()
        assert "✓ [1/1] p1: passed (0s)" in lines
        assert "· [1/1] p1: timeout scenario merged" in lines
        assert not any("✗" in line for line in lines)


SCALE = st.floats(min_value=1.0, max_value=600.0)


@settings(max_examples=200, deadline=None)
@given(
    scale=SCALE,
    shares=st.lists(st.tuples(st.floats(0.0, 0.2), st.floats(1.0, 1.5), st.floats(0.0, 0.2)), min_size=2, max_size=30),
)
def test_estimate_at_each_start_is_within_a_factor_of_2(scale: float, shares: list[tuple[float, ...]]) -> None:
    """Profiles' bursts differ by up to 1.5x, starts and stops by up to 20 % of a burst: at each start."""
    timings = [Timing(start=a * scale, bursts=b * scale, stop=c * scale) for a, b, c in shares]
    events, end = overlapped_run(timings)
    state = ProgressState(started=0.0)
    for at, item in events:
        state.feed(item, at)
        if item.phase == "starting" and item.index > 1:
            left = state.remaining(at)
            assert left is not None
            assert end - at < 2 * left and left < 2 * (end - at), (item.index, left, end - at)


@settings(max_examples=200, deadline=None)
@given(
    scale=SCALE,
    shares=st.lists(
        st.tuples(st.floats(0.1, 0.2), st.floats(0.9, 1.1), st.floats(0.05, 0.15)), min_size=2, max_size=30
    ),
)
def test_estimate_is_within_a_factor_of_2_throughout(scale: float, shares: list[tuple[float, ...]]) -> None:
    """Profiles within 10 % of each other: at every event and between, once known, while a profile is to start;
    and never "0s" before the run ends."""
    timings = [Timing(start=a * scale, bursts=b * scale, stop=c * scale) for a, b, c in shares]
    second_start = timings[0].start + timings[0].bursts
    for now, left, true, to_start in estimates(timings):
        if now >= second_start:
            assert left is not None, now
        if left is None:
            continue
        if to_start:
            assert true <= 2 * left and left <= 2 * true, (now, left, true)
        if true > 0:
            assert format_duration(left) != "0s", (now, left, true)


class TestLines:
    def test_one_line_per_event_with_elapsed_time(self) -> None:
        clock = Clock()
        err = io.StringIO()
        with ProbeProgress(Console(file=err, width=80), clock=clock) as display:
            assert display.mode == "lines", "a file is not a terminal"
            assert not display.running
            display.update(event(1, "starting", total=2))
            clock.now += 5
            display.update(event(1, "sleep", "3 requests", 1.0, total=2))
            clock.now += 5
            display.update(event(1, "done", "passed", total=2))
            display.update(event(2, "did_not_start", "port in use", total=2))
            display.update(event(2, "done", "failed", total=2))
        assert err.getvalue().splitlines() == [
            "[    0s] [1/2] p1: starting the server",
            "[    5s] [1/2] p1: sleep (3 requests, at least 1s each)",
            "[   10s] [1/2] p1: done: passed; about 10s left",
            "[   10s] [2/2] p2: did not start: port in use",
            "[   10s] [2/2] p2: done: failed",
        ]

    def test_long_lines_are_not_wrapped(self) -> None:
        err = io.StringIO()
        display = ProbeProgress(Console(file=err, width=40), mode="lines")
        display.update(event(1, "did_not_start", "x" * 100))
        assert len(err.getvalue().splitlines()) == 1

    def test_off_prints_nothing(self) -> None:
        err = io.StringIO()
        with ProbeProgress(Console(file=err, force_terminal=True), mode="off") as display:
            display.update(event(1, "starting"))
            display(event(1, "done", "passed"))
        assert err.getvalue() == ""


class TestLive:
    @staticmethod
    def console() -> tuple[Console, io.StringIO]:
        err = io.StringIO()
        return Console(file=err, force_terminal=True, width=100, color_system="standard"), err

    def _console(self) -> tuple[Console, io.StringIO]:
        return self.console()

    def test_auto_is_live_on_a_terminal(self) -> None:
        console, _ = self._console()
        assert ProbeProgress(console).mode == "live"

    def test_what_it_shows(self) -> None:
        console, _ = self._console()
        clock = Clock()
        display = ProbeProgress(console, mode="live", clock=clock)
        display.state = ProgressState(started=clock.now)
        assert "calibrating" in text_of(display)
        display.update(event(1, "starting"))
        assert "profile 1/3 p1 starting the server" in text_of(display)
        assert "time left known after the first profile" in text_of(display)
        display.update(event(1, "sleep", "3 requests", 2.0))
        clock.now += 1
        shown = text_of(display)
        assert "sleep (3 requests, at least 2s each)" in shown
        assert "1.0s of ≥2s expected" in shown
        clock.now += 2
        assert "waiting for the rest" in text_of(display)
        display.update(event(1, "done", "passed"))
        display.update(event(2, "starting"))
        shown = text_of(display)
        assert "profile 2/3 p2" in shown
        assert "elapsed 3s" in shown and "about 6s left" in shown

    def test_finished_profiles_leave_a_line_and_the_display_is_cleared(self) -> None:
        console, err = self._console()
        with ProbeProgress(console, mode="live", refresh_per_second=20) as display:
            assert display.running
            display.update(event(1, "starting", total=1))
            display.update(event(1, "done", "passed", total=1))
        assert not display.running
        assert not display_threads()
        output = err.getvalue()
        assert "✓ [1/1] p1: passed" in re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output)
        assert cursor_restored(output)

    @pytest.mark.parametrize("exc", [KeyboardInterrupt, RuntimeError])
    def test_stopped_cleanly_on_ctrl_c_and_errors(self, exc: type[BaseException]) -> None:
        console, err = self._console()
        with pytest.raises(exc), ProbeProgress(console, mode="live", refresh_per_second=20) as display:
            display.update(event(1, "sleep", "3 requests", 1.0))
            raise exc
        assert not display.running
        assert not display_threads()
        assert cursor_restored(err.getvalue())
        console.print("after")  # the console is usable again
        assert err.getvalue().endswith("after\n")

    def test_stop_is_idempotent(self) -> None:
        console, _ = self._console()
        display = ProbeProgress(console, mode="live").start()
        display.stop()
        display.stop()
        assert not display.running


DEFAULT_RUN = Path(__file__).parent / "data" / "default-run-progress.json"


def test_the_estimate_of_a_recorded_default_run_is_within_a_factor_of_2_at_every_profile() -> None:
    """A real default run (30 profiles; stops overlapping starts; the 12 timeout scenarios in a batch at the end),
    replayed event by event at the times they came: at each profile's end the estimate is within a factor of 2
    of the time that was really left, the batch still to come included."""
    from launcher.probe.limits import in_default_run
    from launcher.probe.scenarios import SCENARIOS, ProfileTarget, deferred_plan
    from profiles import builtin_profiles

    recorded = json.loads(DEFAULT_RUN.read_text())
    default_set = [ProfileTarget(profile=p) for p in builtin_profiles().values() if in_default_run(p)]
    assert len(default_set) == recorded["total"]
    plan = deferred_plan(default_set, SCENARIOS)
    assert (plan.count, plan.seconds) == (12, 33.0)  # every gunicorn and gunicorn-asgi profile, 30 s + 3 s

    def ratios(deferred: int) -> dict[int, float]:
        state = ProgressState(started=0.0, deferred=deferred, deferred_seconds=plan.seconds, cores=recorded["cores"])
        found: dict[int, float] = {}
        for at, index, phase, expected, detail in recorded["events"]:
            item = ProgressEvent(
                index=index,
                total=recorded["total"],
                profile=f"p{index}",
                phase=phase,
                detail=detail,
                expected_seconds=expected,
            )
            state.feed(item, at)
            if phase == "done" and index not in found and index < recorded["total"]:
                left = state.remaining(at)
                assert left is not None
                found[index] = left / (recorded["end"] - at)
        return found

    with_plan = ratios(plan.count)
    assert all(0.5 < r < 2 for r in with_plan.values()), with_plan
    assert [round(with_plan[i], 2) for i in (5, 15, 25)] == pytest.approx([0.86, 0.83, 0.91], abs=0.02)
    # Without the batch in the plan (the display before this fix) the estimate fell short near the end.
    assert ratios(0)[28] < 0.5
