"""The probe's progress display: plain lines for logs, a live display for terminals, nothing when quiet."""

from __future__ import annotations

import io
import re
import threading

import pytest
from rich.console import Console

from launcher.probe.progress import ProbeProgress, ProgressState, describe, format_duration
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
    def _console(self) -> tuple[Console, io.StringIO]:
        err = io.StringIO()
        return Console(file=err, force_terminal=True, width=100, color_system="standard"), err

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
