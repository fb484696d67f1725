"""Live progress of ``launch probe`` on stderr, fed :class:`~launcher.probe.runner.ProgressEvent` objects.

Three ways to show it, chosen once:

- ``live``: a rich display that redraws in place (profile i of n, its phase,
  the scenario's expected duration as a bar, elapsed and estimated remaining
  time); each finished profile leaves one line above it.
- ``lines``: one plain line per event, with the elapsed time -- for CI logs
  and anything else that is not a terminal.
- ``off``: nothing (``--quiet``).

Use it as a context manager (or call :meth:`ProbeProgress.start` and
:meth:`ProbeProgress.stop`); leaving the block by Ctrl-C or an error stops the
live display and restores the terminal before anything else is printed.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Literal

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from launcher.probe.runner import ProgressEvent

Mode = Literal["auto", "live", "lines", "off"]

_PHASE_WORDS = {
    "starting": "starting the server",
    "stopping": "stopping the server",
    "conformance": "server conformance check",
    "did_not_start": "did not start",
    "done": "done",
}


def format_duration(seconds: float) -> str:
    """``42s``, ``3m07s``, ``1h02m``: short and stable in width."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def describe(event: ProgressEvent) -> str:
    """What the event says, in words, without the ``[i/n] profile`` prefix."""
    if event.phase in _PHASE_WORDS:
        words = _PHASE_WORDS[event.phase]
        return f"{words}: {event.detail}" if event.detail else words
    # A scenario.
    parts = [event.detail] if event.detail else []
    if event.expected_seconds > 0:
        parts.append(f"at least {event.expected_seconds:g}s each")
    return f"{event.phase} ({', '.join(parts)})" if parts else event.phase


MIN_LEFT_SECONDS = 1.0
"""The least estimate shown while anything is still running: an overdue profile is not done."""

_BACKGROUND_PHASES = ("stopping", "done")


@dataclass(kw_only=True)
class ProgressState:
    """What the display knows: pure bookkeeping, fed events and a clock reading.

    The runner stops a profile in a background thread while the next one
    starts (``launcher.probe.runner._Stopping``), so events of two profiles
    interleave: profile k+1's ``starting`` comes before profile k's
    ``stopping`` or ``done``. Everything here is therefore kept per profile
    (by ``index``), never as "the profile of the last event".
    """

    started: float
    event: ProgressEvent | None = None
    """The event on display: the latest one of the profile in the foreground (a previous profile's
    background ``stopping`` and ``done`` do not replace it)."""
    phase_started: float = 0.0
    starts: dict[int, float] = field(default_factory=dict)
    """Profile index -> when its ``starting`` came."""
    ready: dict[int, float] = field(default_factory=dict)
    """Profile index -> seconds from its ``starting`` to its next event (its start, and any wait for the
    stop before it)."""
    own_seconds: dict[int, float] = field(default_factory=dict)
    """Profile index -> seconds from its ``starting`` to its first ``done`` (start, bursts and stop)."""
    done_count: dict[int, int] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)
    """Profile index -> why it did not start."""
    timeouts: set[int] = field(default_factory=set)
    """Profiles whose deferred timeout scenario runs now (on a fresh server, after every profile's bursts)."""
    timeouts_started: float = 0.0
    timeout_expected: float = 0.0
    deferred: int = 0
    """Timeout scenarios the run defers to its end (the batch), known before it starts."""
    deferred_seconds: float = 0.0
    """Their longest request."""
    cores: int = 1
    batch_seen: bool = False

    def feed(self, event: ProgressEvent, now: float) -> None:
        """Record ``event``, seen at ``now``."""
        index = event.index
        if index not in self.starts:
            self.starts[index] = now  # ``starting`` comes first; any first event of a profile will do
        elif index not in self.ready:
            self.ready[index] = now - self.starts[index]
        if event.phase == "did_not_start":
            self.errors[index] = event.detail
        if event.phase == "timeout" and index in self.own_seconds:
            # The timeout scenarios come last, side by side, each profile's on a fresh server: one batch.
            self.timeouts.add(index)
            self.batch_seen = True
            self.timeouts_started = now
            self.timeout_expected = max(self.timeout_expected, event.expected_seconds)
        if event.phase == "done":
            self.done_count[index] = self.done_count.get(index, 0) + 1
            if index not in self.own_seconds:
                self.own_seconds[index] = now - self.starts.get(index, now)
            self.timeouts.discard(index)
        if event.phase not in _BACKGROUND_PHASES or index >= max(self.starts):
            self.event = event
            self.phase_started = now

    @property
    def total(self) -> int:
        """Profiles in the run (0 before any event)."""
        return self.event.total if self.event is not None else 0

    def repeated_done(self, event: ProgressEvent) -> bool:
        """Whether ``event`` (fed already) is a second ``done`` of its profile (its timeout scenario merged)."""
        return event.phase == "done" and self.done_count.get(event.index, 0) > 1

    def elapsed(self, now: float) -> float:
        """Seconds since the probe started."""
        return now - self.started

    def interval(self) -> float | None:
        """Seconds between successive profiles' starts, on average; None before a second profile started.

        This, not a profile's own start-to-done time, is what a profile costs the run: a profile's stop
        runs beside the next one's start, so own times added up would count each overlap twice, while
        start-to-start intervals tile the run's wall time exactly (the last profile's own time closes it).
        """
        if len(self.starts) < 2:
            return None
        first, last = min(self.starts), max(self.starts)
        return (self.starts[last] - self.starts[first]) / (last - first)

    def remaining(self, now: float) -> float | None:
        """Estimated seconds left; None until a typical profile's time is known.

        The current profile's interval, less what it has used; an interval for
        each profile not started yet but the last; the last profile's own time
        (start to done: its stop overlaps nothing); and the running batch of
        timeout scenarios, if any. Never under :data:`MIN_LEFT_SECONDS` while
        something still runs.
        """
        if self.event is None or not self.starts:
            return None
        interval, own_mean = self.interval(), _mean(self.own_seconds.values())
        known = [value for value in (interval, own_mean) if value is not None]
        if not known:
            return None
        # Each stands in for the other until both are known (a sequential run knows the own time first).
        per = interval if interval is not None else known[0]
        own = own_mean if own_mean is not None else known[0]
        current, total = max(self.starts), self.total
        spent = now - self.starts[current]
        left = 0.0
        if current < total:
            if current not in self.own_seconds:
                left += max(0.0, per - spent)
            left += (total - current - 1) * per + own
        elif current not in self.own_seconds:
            left += max(0.0, own - spent)
        if self.timeouts:
            size = max(len(self.timeouts), 1)
            left += max(0.0, self._timeout_batch(own, size, self.timeout_expected) - (now - self.timeouts_started))
        elif self.deferred and not self.batch_seen:
            # Still to come, after the last profile: without it the estimate fell short by the whole batch
            # (3.5 of 23 min in a default run here), the more so the nearer the end.
            left += self._timeout_batch(own, self.deferred, self.deferred_seconds)
        running = current < total or bool(self.timeouts) or any(i not in self.own_seconds for i in self.starts)
        return max(left, MIN_LEFT_SECONDS) if running else left

    def _timeout_batch(self, own: float, size: int, expected: float) -> float:
        """The batch of ``size`` timeout scenarios: their servers' starts, the request, their stops.

        The servers start side by side, and a start is CPU-bound (imports, the model), so ``size`` of them
        take about ``size / cores`` starts; then the longest request (``expected``); then the stops, side
        by side, about one start's time. Without a measured start yet, a profile's own time stands in.
        """
        if expected <= 0:
            return own
        start = _mean(self.ready.values())
        start = start if start is not None else own
        return start * math.ceil(size / max(self.cores, 1)) + expected + start

    def phase_fraction(self, now: float) -> float | None:
        """How far into its expected duration the current scenario is (0..1), None when there is none."""
        if self.event is None or self.event.expected_seconds <= 0:
            return None
        return min(1.0, (now - self.phase_started) / self.event.expected_seconds)


def _mean(values: Iterable[float]) -> float | None:
    items = list(values)
    return sum(items) / len(items) if items else None


class ProbeProgress:
    """Progress display for ``launch probe``; see the module docstring.

    ``update`` (also the instance itself, as a callable) is what
    :func:`launcher.probe.runner.run_probe` takes as ``progress``.
    """

    def __init__(
        self,
        console: Console | None = None,
        *,
        mode: Mode = "auto",
        clock: Callable[[], float] = time.monotonic,
        refresh_per_second: float = 4.0,
        deferred: int = 0,
        deferred_seconds: float = 0.0,
        cores: int = 1,
    ) -> None:
        self.console = console if console is not None else Console(stderr=True)
        if mode == "auto":
            interactive = self.console.is_terminal and not self.console.is_dumb_terminal
            mode = "live" if interactive else "lines"
        self.mode: Mode = mode
        self._clock = clock
        self._refresh = refresh_per_second
        self._lock = threading.Lock()
        self._live: Live | None = None
        self._ticker: threading.Thread | None = None
        self._stopping = threading.Event()
        # What the run will do at its end (launcher.probe.scenarios.DeferredPlan), for the estimate.
        self._deferred, self._deferred_seconds, self._cores = deferred, deferred_seconds, cores
        self.state = self._fresh_state()

    def _fresh_state(self) -> ProgressState:
        return ProgressState(
            started=self._clock(), deferred=self._deferred, deferred_seconds=self._deferred_seconds, cores=self._cores
        )

    # lifecycle

    def start(self) -> ProbeProgress:
        """Start showing progress (the clock for elapsed time starts here)."""
        self.state = self._fresh_state()
        if self.mode == "live" and self._live is None:
            # Refreshed by a thread of ours rather than rich's, so that stop() can wait for it to end.
            live = Live(
                console=self.console,
                get_renderable=self.renderable,
                auto_refresh=False,
                transient=True,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            live.start(refresh=True)
            self._live = live
            self._stopping.clear()
            self._ticker = threading.Thread(target=self._tick, name="launch-progress", daemon=True)
            self._ticker.start()
        return self

    def _tick(self) -> None:
        while not self._stopping.wait(1 / self._refresh):
            live = self._live
            if live is not None:
                live.refresh()

    def stop(self) -> None:
        """Stop and clear the live display; safe to call twice, and after a failed start."""
        self._stopping.set()
        ticker, self._ticker = self._ticker, None
        try:
            if ticker is not None:
                ticker.join(timeout=5)
        finally:
            # Even when a second Ctrl-C cuts the wait short: the terminal gets its cursor back.
            live, self._live = self._live, None
            if live is not None:
                live.stop()

    @property
    def running(self) -> bool:
        """Whether a live display is on screen (or its refresh thread is alive)."""
        return self._live is not None or self._ticker is not None

    def __enter__(self) -> ProbeProgress:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # events

    def update(self, event: ProgressEvent) -> None:
        """Take one event from the runner."""
        if self.mode == "off":
            return
        with self._lock:
            now = self._clock()
            self.state.feed(event, now)
            output: str | Text | None = None
            if self.mode == "lines":
                output = self.line(event, now)
            elif event.phase == "done":
                output = self.done_line(event, now)
        # Outside the lock: the live display's refresh thread takes it to render.
        live = self._live
        if self.mode == "lines" and output is not None:
            self.console.print(output, highlight=False, markup=False, soft_wrap=True)
        elif live is not None:
            if output is not None:
                # A line that stays, above the live display.
                live.console.print(output)
            live.refresh()

    __call__ = update

    # rendering

    def line(self, event: ProgressEvent, now: float) -> str:
        """One plain line for ``lines`` mode."""
        text = f"[{format_duration(self.state.elapsed(now)):>6}] [{event.index}/{event.total}] {event.profile}: "
        text += describe(event)
        remaining = self.state.remaining(now)
        if event.phase == "done" and remaining and not self.state.repeated_done(event):
            text += f"; about {format_duration(remaining)} left"
        return text

    def done_line(self, event: ProgressEvent, now: float) -> Text:
        """The line a finished profile leaves above the live display."""
        seconds = self.state.own_seconds.get(event.index, 0.0)
        error = self.state.errors.get(event.index, "")
        text = Text()
        if self.state.repeated_done(event):
            # Not a verdict: more evidence (the timeout scenario) for a profile already judged above.
            text.append("· ", style="dim")
            verdict = Text(event.detail or "done", style="dim")
        elif error:
            text.append("✗ ", style="bold red")
            verdict = Text(f"did not start: {error}", style="red")
        elif event.detail == "passed":
            text.append("✓ ", style="bold green")
            verdict = Text("passed", style="green")
        else:
            text.append("✗ ", style="bold red")
            verdict = Text(event.detail or "done", style="red")
        text.append(f"[{event.index}/{event.total}] ")
        text.append(event.profile, style="bold")
        text.append(": ")
        text.append_text(verdict)
        if not self.state.repeated_done(event):
            text.append(f" ({format_duration(seconds)})", style="dim")
        return text

    def renderable(self) -> RenderableType:
        """The live display, as of now."""
        with self._lock:
            return self._render(self._clock())

    def _render(self, now: float) -> RenderableType:
        state = self.state
        event = state.event
        if event is None:
            return Group(Spinner("dots", text=Text(" calibrating the CPU loop", style="dim")), self._times(now))
        head = Table.grid(padding=(0, 1))
        head.add_column(no_wrap=True)
        head.add_column(no_wrap=True)
        head.add_column()
        title = Text()
        title.append(f"profile {event.index}/{event.total} ", style="dim")
        title.append(event.profile, style="bold")
        head.add_row(Spinner("dots"), title, Text(describe(event), style="cyan"))
        rows: list[RenderableType] = [head]
        fraction = state.phase_fraction(now)
        if fraction is not None:
            bar = Table.grid(padding=(0, 1))
            bar.add_column(width=2)
            bar.add_column(width=30)
            bar.add_column(no_wrap=True)
            spent = now - state.phase_started
            over = spent > event.expected_seconds
            label = f"{spent:.1f}s of ≥{event.expected_seconds:g}s expected" + (
                " (waiting for the rest)" if over else ""
            )
            bar.add_row("", ProgressBar(total=1.0, completed=fraction, width=30, pulse=over), Text(label, style="dim"))
            rows.append(bar)
        rows.append(self._times(now))
        return Group(*rows)

    def _times(self, now: float) -> Text:
        remaining = self.state.remaining(now)
        text = Text("  ")
        text.append(f"elapsed {format_duration(self.state.elapsed(now))}", style="dim")
        if remaining is not None:
            text.append(f" · about {format_duration(remaining)} left", style="dim")
        elif self.state.event is not None and self.state.event.total > 1:
            text.append(" · time left known after the first profile", style="dim")
        return text
