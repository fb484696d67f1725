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
from launcher.capacity.engine import StepRun, open_loop, settle
from launcher.capacity.model import SearchPolicy, StepResult, knee, next_rate, parse_duration, parse_rate
from launcher.capacity.runner import ROUTES, check_answers
from launcher.child import DEFAULT_START_TIMEOUT, ServerProcess
from launcher.errors import ConfigError, StartupError
from launcher.probe.appprobe import demo_path_of
from launcher.probe.client import RequestSpec, run_burst
from launcher.probe.model import Kind, LoadCheck, LoadDecision, ProbeRun, RequestRecord
from launcher.probe.recommend import recommend_for_load, rejection
from launcher.probe.scenario_file import ScenarioFile, Target
from launcher.userapp import AppShape, AppSpec
from profiles.model import Profile

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
class DemoClicks:
    """What the hold clicks in the demo, a person using it beside the API traffic."""

    path: str = ""
    """Where the app mounts the demo ("" for the root)."""
    api_name: str = "/sleep"
    args: tuple[object, ...] = (CLICK_WORK_S,)


REFERENCE_CLICKS = DemoClicks()
"""The reference service's demo: its sleep event, :data:`CLICK_WORK_S` each."""


def demo_clicks(scenario: ScenarioFile, shape: AppShape, app: AppSpec, scenario_path: Path) -> DemoClicks | None:
    """A user's app: its scenario file's first ``[[gradio]]`` event, at the demo's mount path.

    None without one: the launcher cannot guess an event's inputs, so the hold then clicks nothing.
    """
    if not scenario.gradio:
        return None
    entry = scenario.gradio[0]
    return DemoClicks(
        path=demo_path_of(entry, 0, shape, app, scenario_path), api_name=entry.api_name, args=tuple(entry.inputs)
    )


@dataclass(frozen=True, kw_only=True)
class LoadGoal:
    """The user's load: a rate of GETs of one route of the reference service, at a p99 target."""

    rate: float
    route: str = "/generate"
    p99_s: float = 2.0
    app: bool = False
    """The route is a user's app's: any GET path it serves, checked against the app before any start (not one
    of the reference service's :data:`~launcher.capacity.runner.ROUTES`)."""

    def __post_init__(self) -> None:
        if not (self.rate > 0 and math.isfinite(self.rate)):
            raise ConfigError(f"--target-rate {self.rate:g}/s: expected a rate above zero")
        if not (self.p99_s > 0 and math.isfinite(self.p99_s)):
            raise ConfigError(f"--p99 {self.p99_s:g} s: expected a duration above zero")
        if self.app:
            if not self.route.startswith("/"):
                raise ConfigError(f"--route {self.route!r}: expected a path of the app, starting with /")
        elif self.route.split("?", 1)[0] not in ROUTES:
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


def goal_from(
    rate: str | None,
    route: str | None,
    p99: str | None,
    *,
    app: bool,
    file_target: Target | None = None,
    file_label: str = "",
) -> LoadGoal | None:
    """The user's load from ``--target-rate``, ``--route`` and ``--p99``; None when no rate is stated.

    Each falls back on the scenario file's ``[target]`` (``file_label`` names it in errors).
    :class:`ConfigError` (one line, naming where the value came from) when it is unusable.
    """
    sources: dict[str, str | None] = {"rate": rate, "route": route, "p99": p99}
    taken: dict[str, str | None] = dict(sources)
    where = dict.fromkeys(sources, "")
    if file_target is not None:
        found = {"rate": str(file_target.rate), "route": file_target.route, "p99": str(file_target.p99)}
        for key, value in sources.items():
            if value is None:
                taken[key], where[key] = found[key], f"{file_label} [target]: "
    if taken["rate"] is None:
        if route is not None or p99 is not None:
            raise ConfigError("--route and --p99 go with --target-rate RATE")
        return None
    if app and taken["route"] is None:
        raise ConfigError("--target-rate with --app needs --route PATH: the GET route of your app to load")

    def read(key: str, parse: Callable[[str], float]) -> float:
        try:
            return parse(str(taken[key]))
        except ConfigError as exc:
            raise ConfigError(f"{where[key]}{exc}") from None

    goal_rate = read("rate", parse_rate)
    goal_p99 = read("p99", parse_duration) if taken["p99"] is not None else 2.0
    try:
        return LoadGoal(rate=goal_rate, route=taken["route"] or "/generate", p99_s=goal_p99, app=app)
    except ConfigError as exc:
        raise ConfigError(f"{where['route']}{exc}") from None


def carried(step: StepResult, clicks: Sequence[RequestRecord], goal: LoadGoal) -> tuple[bool, str]:
    """Whether the hold carried the rate, and the check in words (the first failure, else the figures)."""
    failed_clicks = [c for c in clicks if not c.ok]
    figures = f"p99 {step.p99_s:.2f} s" if step.p99_s is not None else "no answer"
    if step.p50_s is not None and step.p99_s is not None:
        figures = f"p50 {step.p50_s:.2f} s, {figures}"
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


def _clicks(seconds: float, clicks: DemoClicks) -> list[RequestSpec]:
    count = max(1, math.floor(seconds / CLICK_INTERVAL_S))
    return [
        RequestSpec(
            kind=Kind.DEMO,
            work="click",
            api_name=clicks.api_name,
            args=clicks.args,
            delay_s=(i + 0.5) * CLICK_INTERVAL_S,
        )
        for i in range(count)
    ]


async def _hold_with_clicks(
    server: ServerProcess, url: str, goal: LoadGoal, clicks: DemoClicks | None
) -> tuple[StepRun, list[RequestRecord]]:
    seconds = goal.hold_seconds
    load = open_loop(url, goal.rate, seconds, timeout=goal.request_timeout, target_s=goal.p99_s)
    if clicks is None:
        return await load, []
    demo = run_burst(
        server.url + clicks.path.rstrip("/"),
        _clicks(seconds, clicks),
        timeout=goal.request_timeout + CLICK_WORK_S,
        workers=server.profile.processes,
        health=False,
        phase="step",
    )
    run, records = await asyncio.gather(load, demo)
    return run, [r for r in records if r.kind == Kind.DEMO]


def check_profile(
    profile: Profile,
    goal: LoadGoal,
    *,
    source: str | None = None,
    profiles_files: tuple[Path, ...] = (),
    app: AppSpec | None = None,
    health_path: str | None = None,
    clicks: DemoClicks | None = REFERENCE_CLICKS,
    cpu_rate: float | None = None,
    start_timeout: float = DEFAULT_START_TIMEOUT,
    progress: Callable[[str], None] = lambda _: None,
) -> LoadCheck:
    """Start ``profile``, hold the goal's rate with demo clicks, search its knee, stop it.

    It serves ``app``, else the reference service. ``clicks`` None: no demo is clicked (the user's scenario
    file names no demo event to click).
    """
    profile = profile.replace(host="127.0.0.1")
    blank = LoadCheck(
        profile=profile.name,
        backend=profile.backend,
        processes=profile.processes,
        workers=profile.workers,
        carried=False,
    )
    server = ServerProcess(
        profile=profile,
        profiles_files=(Path(source),) if source else profiles_files,
        # The probe's CPU loop calibration: /test2's work is the same amount as in the matrix.
        env={"LAUNCH_CPU_RATE": repr(cpu_rate)} if cpu_rate else {},
        log_level="warning",
        app=app,
        health_path=health_path,
    )

    def url() -> str:
        # A user's app is served whole; the reference service's API is under a split's prefix (Ray's).
        return server.url + (profile.api_prefix if app is None else "") + goal.route

    try:
        progress(f"{profile.name}: starting")
        try:
            server.start(timeout=start_timeout)
        except StartupError as exc:
            return dataclasses.replace(blank, error=str(exc), why=f"did not start: {exc}")
        seconds = goal.hold_seconds
        progress(f"{profile.name}: {goal.rate:g}/s of {goal.route} for {seconds:g} s, the demo clicked meanwhile")
        run, clicked = interrupts.run(_hold_with_clicks(server, url(), goal, clicks))
        if app is not None:
            check_answers(run, goal.route, profile.name)
        step = run.summary(rate=goal.rate, seconds=seconds, target_s=goal.p99_s, worker_pids=server.worker_pids_now())
        ok, why = carried(step, clicked, goal)
        progress(f"{profile.name}: {'carries' if ok else 'does not carry'} {goal.rate:g}/s: {why}")
        history = [(goal.rate, step.passed and ok)]
        policy = goal.search()
        last = run
        while server.alive() and (rate := next_rate(history, policy)) is not None:
            note = settle(
                server.url,
                last,
                workers=profile.workers,
                in_flight_known=app is None,
                request_timeout=goal.request_timeout,
                idle_timeout=IDLE_TIMEOUT_S,
            )
            if note is not None:
                progress(f"{profile.name}: {note}")
            knee_run = last = interrupts.run(
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
            p50_s=step.p50_s,
            p99_s=step.p99_s,
            demo_clicks=len(clicked),
            demo_failures=sum(1 for c in clicked if not c.ok),
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
    checks = [
        check_profile(
            r.profile, goal, source=r.source, cpu_rate=calibrated, start_timeout=start_timeout, progress=progress
        )
        for r in fit
    ]
    return recommend_for_load(checks, rate=goal.rate, route=goal.route, p99_s=goal.p99_s, cores=cores)


def check_app_load(
    profiles: Sequence[Profile],
    goal: LoadGoal,
    *,
    app: AppSpec,
    health_path: str,
    clicks: DemoClicks | None,
    cores: int,
    profiles_files: tuple[Path, ...] = (),
    start_timeout: float = DEFAULT_START_TIMEOUT,
    progress: Callable[[str], None] = lambda _: None,
) -> LoadDecision:
    """Hold each of ``profiles`` serving ``app`` at the goal's rate, one at a time; decide as for the reference.

    ``profiles``: those the app's probe found fit (:func:`launcher.probe.appprobe.qualifying`), and only those.
    """
    checks = [
        check_profile(
            profile,
            goal,
            profiles_files=profiles_files,
            app=app,
            health_path=health_path,
            clicks=clicks,
            start_timeout=start_timeout,
            progress=progress,
        )
        for profile in profiles
    ]
    return recommend_for_load(checks, rate=goal.rate, route=goal.route, p99_s=goal.p99_s, cores=cores)
