"""``launch probe --target-rate``: hold every fit profile at the user's rate, and pick the simplest that carries it.

The probe's matrix says which set-ups behave correctly; this says which of
them carry the user's traffic, stated as a rate at a latency target ("4.5
requests a second of /test2 with p99 under 2 s"), as Triton's Model Analyzer
and vLLM's benchmark state it. After the matrix, every profile that is fit to
serve (:func:`launcher.probe.recommend.rejection` is None), and only those, is
started again and held at the target rate with the engine of ``launch
capacity`` (:func:`launcher.capacity.engine.open_loop`: open loop, latency
from the scheduled send time) for :attr:`LoadGoal.hold_seconds` (at least
:data:`HOLD_MIN_SECONDS` and :data:`HOLD_MIN_REQUESTS` requests), while the
Gradio demo is clicked every :data:`CLICK_INTERVAL_S`: "carries the load"
includes "the demo still works".

It carries the rate (:func:`carried`) when the p99 is within the target, no
request failed, answers came at :data:`ACHIEVED_SHARE` of the rate or more,
and every click completed. Then a short search around the target rate (steps
of :data:`KNEE_STEP_SECONDS`, up to :data:`KNEE_RANGE` times the rate or down
from it, :data:`KNEE_BISECTIONS` narrowing steps; the search of ``launch
capacity``, :func:`launcher.capacity.model.next_rate`) finds its knee: the
headroom of one that carries it, how far off one that does not is. The
decision is :func:`launcher.probe.recommend.recommend_for_load`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from launcher import interrupts
from launcher.capacity.engine import StepRun, open_loop, wait_idle
from launcher.capacity.model import SearchPolicy, StepResult, knee, next_rate
from launcher.capacity.runner import ROUTES
from launcher.child import DEFAULT_START_TIMEOUT, ServerProcess
from launcher.errors import ConfigError, StartupError
from launcher.probe.client import RequestSpec, run_burst
from launcher.probe.model import Kind, LoadCheck, LoadDecision, ProbeRun, ProfileResult, RequestRecord
from launcher.probe.recommend import recommend_for_load, rejection

HOLD_MIN_SECONDS = 20.0
HOLD_MIN_REQUESTS = 50
"""The target rate is held at least this long and for at least this many requests: a p99 needs 50 to mean more
than the maximum, and 20 s lets a queue that grows show in it."""
ACHIEVED_SHARE = 0.97
"""Answers must come at least this fast, relative to the rate: a server that falls behind builds a queue that a
20 s hold may not yet show in its p99 (completions of one that keeps up jitter by well under 3 %)."""
CLICK_INTERVAL_S = 5.0
"""A demo click this often during the hold: a low rate, one person using the demo beside the API traffic."""
CLICK_WORK_S = 0.2
"""What each click asks the demo's sleep event for."""
KNEE_STEP_SECONDS = 5.0
KNEE_BISECTIONS = 3
KNEE_RANGE = 8.0
"""The knee search looks up to this many times the target rate (or down from it)."""
IDLE_TIMEOUT_S = 60.0


@dataclass(frozen=True, kw_only=True)
class LoadGoal:
    """The user's load: a rate of GETs of one route of the reference service, at a p99 target."""

    rate: float
    route: str = "/generate"
    p99_s: float = 2.0

    def __post_init__(self) -> None:
        if not (self.rate > 0 and math.isfinite(self.rate)):
            raise ConfigError(f"--target-rate {self.rate:g}/s: expected a rate above zero")
        if not (self.p99_s > 0 and math.isfinite(self.p99_s)):
            raise ConfigError(f"--p99 {self.p99_s:g} s: expected a duration above zero")
        if self.route.split("?", 1)[0] not in ROUTES:
            raise ConfigError(f"--route {self.route!r}: expected one of {', '.join(ROUTES)} (with any query)")

    @property
    def hold_seconds(self) -> float:
        """How long the rate is held: at least :data:`HOLD_MIN_SECONDS` and :data:`HOLD_MIN_REQUESTS` requests."""
        return max(HOLD_MIN_SECONDS, HOLD_MIN_REQUESTS / self.rate)

    @property
    def request_timeout(self) -> float:
        """Per request: long enough to see how far a miss went (as ``launch capacity``'s default)."""
        return max(4 * self.p99_s, self.p99_s + 5.0)

    def search(self) -> SearchPolicy:
        """The knee search around the target rate (its first step, the hold, is the target rate itself)."""
        return SearchPolicy(
            start=self.rate,
            factor=2.0,
            max_rate=self.rate * KNEE_RANGE,
            bisections=KNEE_BISECTIONS,
            min_rate=min(0.05, self.rate / KNEE_RANGE),
        )


def carried(step: StepResult, clicks: Sequence[RequestRecord], goal: LoadGoal) -> tuple[bool, str]:
    """Whether the hold carried the rate, and the check in words (the first failure, else the figures)."""
    failed_clicks = [c for c in clicks if not c.ok]
    figures = f"p99 {step.p99_s:.2f} s" if step.p99_s is not None else "no answer"
    figures += f", {step.achieved_rate:.3g}/s answered of {goal.rate:g}/s"
    if step.errors:
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(step.error_kinds.items()))
        return False, f"{step.errors} of {step.sent} requests failed ({kinds})"
    if step.stopped_early or step.sent < step.scheduled:
        return False, f"stopped early: more than 1% of the requests over {goal.p99_s:g} s ({figures})"
    if step.p99_s is None or step.p99_s > goal.p99_s:
        return False, f"{figures}: p99 over {goal.p99_s:g} s"
    if step.achieved_rate < ACHIEVED_SHARE * goal.rate:
        return False, f"{figures}: answers slower than {ACHIEVED_SHARE:g} x the rate, a queue grows"
    if failed_clicks:
        first = failed_clicks[0]
        return False, f"{figures}; {len(failed_clicks)} of {len(clicks)} demo clicks failed ({first.error})"
    return True, f"{figures}, {len(clicks)} of {len(clicks)} demo clicks done"


def _clicks(seconds: float) -> list[RequestSpec]:
    count = max(1, math.floor(seconds / CLICK_INTERVAL_S))
    return [
        RequestSpec(
            kind=Kind.DEMO,
            work="sleep",
            api_name="/sleep",
            args=(CLICK_WORK_S,),
            delay_s=(i + 0.5) * CLICK_INTERVAL_S,
        )
        for i in range(count)
    ]


async def _hold_with_clicks(server: ServerProcess, url: str, goal: LoadGoal) -> tuple[StepRun, list[RequestRecord]]:
    seconds = goal.hold_seconds
    load = open_loop(url, goal.rate, seconds, timeout=goal.request_timeout, target_s=goal.p99_s)
    clicks = run_burst(
        server.url,
        _clicks(seconds),
        timeout=goal.request_timeout + CLICK_WORK_S,
        workers=server.profile.processes,
        health=False,
        phase="step",
    )
    run, records = await asyncio.gather(load, clicks)
    return run, [r for r in records if r.kind == Kind.DEMO]


def check_profile(
    result: ProfileResult,
    goal: LoadGoal,
    *,
    cpu_rate: float | None,
    start_timeout: float = DEFAULT_START_TIMEOUT,
    progress: Callable[[str], None] = lambda _: None,
) -> LoadCheck:
    """Start ``result``'s profile, hold the goal's rate with demo clicks, search its knee, stop it."""
    profile = result.profile.replace(host="127.0.0.1")
    blank = LoadCheck(
        profile=profile.name,
        backend=profile.backend,
        processes=profile.processes,
        workers=profile.workers,
        carried=False,
    )
    server = ServerProcess(
        profile=profile,
        profiles_files=(Path(result.source),) if result.source else (),
        # The probe's CPU loop calibration: /test2's work is the same amount as in the matrix.
        env={"LAUNCH_CPU_RATE": repr(cpu_rate)} if cpu_rate else {},
        log_level="warning",
    )

    def url() -> str:
        # A split profile's API is under its prefix (Ray's); the demo stays at the root.
        return server.url + profile.api_prefix + goal.route

    try:
        progress(f"{profile.name}: starting")
        try:
            server.start(timeout=start_timeout)
        except StartupError as exc:
            return dataclasses.replace(blank, error=str(exc), why=f"did not start: {exc}")
        seconds = goal.hold_seconds
        progress(f"{profile.name}: {goal.rate:g}/s of {goal.route} for {seconds:g} s, the demo clicked meanwhile")
        run, clicks = interrupts.run(_hold_with_clicks(server, url(), goal))
        step = run.summary(rate=goal.rate, seconds=seconds, target_s=goal.p99_s, worker_pids=server.worker_pids_now())
        ok, why = carried(step, clicks, goal)
        progress(f"{profile.name}: {'carries' if ok else 'does not carry'} {goal.rate:g}/s: {why}")
        history = [(goal.rate, step.passed and ok)]
        policy = goal.search()
        while server.alive() and (rate := next_rate(history, policy)) is not None:
            interrupts.run(wait_idle(server.url, workers=profile.workers, timeout=IDLE_TIMEOUT_S))
            knee_run = interrupts.run(
                open_loop(url(), rate, KNEE_STEP_SECONDS, timeout=goal.request_timeout, target_s=goal.p99_s)
            )
            knee_step = knee_run.summary(
                rate=rate, seconds=KNEE_STEP_SECONDS, target_s=goal.p99_s, worker_pids=server.worker_pids_now()
            )
            history.append((rate, knee_step.passed))
            progress(f"{profile.name}: knee search: {rate:g}/s {'PASS' if knee_step.passed else 'MISS'}")
        if not server.alive():
            return dataclasses.replace(blank, error=f"the server stopped: {server.cause()}", why="died")
        found = knee(history)
        return dataclasses.replace(
            blank,
            carried=ok,
            seconds=seconds,
            requests=step.scheduled,
            errors=step.errors,
            achieved_rate=step.achieved_rate,
            p99_s=step.p99_s,
            demo_clicks=len(clicks),
            demo_failures=sum(1 for c in clicks if not c.ok),
            knee=found,
            knee_capped=found is not None and all(passed for _, passed in history),
            why=why,
        )
    finally:
        with interrupts.shielded():
            interrupts.hold("stop")
            server.stop()
        server.cleanup()


def check_load(
    run: ProbeRun,
    goal: LoadGoal,
    *,
    cores: int,
    start_timeout: float = DEFAULT_START_TIMEOUT,
    progress: Callable[[str], None] = lambda _: None,
) -> LoadDecision:
    """Hold every fit profile of ``run`` at the goal's rate (one at a time) and decide; KeyboardInterrupt passes."""
    fit = [r for r in run.profiles if rejection(r) is None]
    cpu_rate = run.machine.get("cpu_rate")
    calibrated = float(cpu_rate) if isinstance(cpu_rate, int | float) else None
    checks = [check_profile(r, goal, cpu_rate=calibrated, start_timeout=start_timeout, progress=progress) for r in fit]
    return recommend_for_load(checks, rate=goal.rate, route=goal.route, p99_s=goal.p99_s, cores=cores)
