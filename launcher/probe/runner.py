"""Run the probe: start each profile, fire its bursts, judge them, stop it.

One profile's bursts at a time, so one profile's CPU work never disturbs
another's measurements. What measures nothing overlaps, and is recorded: a
profile's stop runs while the next one starts (``start_overlapped_with``),
and the gunicorn timeout scenarios -- waits -- run side by side, each on a
fresh server of its profile, once every other burst is done (``overlapped_with``). Each profile
runs as a ``launch --profile`` child in its own process group
(:class:`launcher.child.ServerProcess`); whatever happens -- a failed start,
a crash, Ctrl-C -- every child is stopped before :func:`run_probe` returns,
and the results gathered so far are kept.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import importlib.metadata
import os
import platform
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.settings import MAX_SECONDS, MAX_STEPS, HandlerMode
from app.work import calibrate_cpu_rate
from launcher import interrupts, procs
from launcher.child import _EXCEPTION_LINE, DEFAULT_START_TIMEOUT, DEFAULT_STOP_TIMEOUT, ServerProcess
from launcher.errors import ConfigError, StartupError
from launcher.probe.assess import assess
from launcher.probe.client import RequestSpec, run_burst, run_slow_clients
from launcher.probe.conformance import STREAM_SECONDS, check_backends
from launcher.probe.expectations import expectations, timeout_events
from launcher.probe.judge import judge
from launcher.probe.limits import DEFAULT_REPEATS, MAX_REPEATS, MAX_REQUESTS
from launcher.probe.logs import parse_log_events
from launcher.probe.memory import available_mib, estimate
from launcher.probe.model import Conformance, Kind, ProbeRun, ProfileResult, ScenarioResult, Status
from launcher.server import health_ok
from profiles.model import Profile

SCENARIOS: tuple[str, ...] = ("sleep", "cpu", "generate", "mixed", "liveness", "timeout", "noawait")
"""The default set. ``liveness`` is not a burst of its own: it polls /health during every burst.
``noawait`` calls the lab route that makes the write-up's missing-await mistake (1-worker profiles)."""
EXTRA_SCENARIOS: tuple[str, ...] = ("slowclients",)
"""Asked for by name only: clients that send half a request and stall."""
ALL_SCENARIOS: tuple[str, ...] = SCENARIOS + EXTRA_SCENARIOS
BURST_SCENARIOS: tuple[str, ...] = tuple(s for s in ALL_SCENARIOS if s != "liveness")
SLOW_CLIENTS = 50
SLOW_CLIENT_SECONDS = 2.0
SEED_SLEEP_S = 10.0
"""The write-up's ``time.sleep(10)``."""
SEED_CPU_S = 8.0
"""The write-up's ``for i in range(100000000)``: about 8 s on its machine."""
TIMEOUT_OVERSHOOT_S = 3.0
"""The timeout scenario's work lasts the profile's timeout plus this."""
ONCE_SCENARIOS: tuple[str, ...] = ("timeout", "noawait", "slowclients")
"""Not repeated: they reproduce a mechanism (a kill, an error), not a figure with a spread."""


@dataclass(frozen=True, kw_only=True)
class ProbeOptions:
    """How hard and how long to probe."""

    scenarios: tuple[str, ...] = SCENARIOS
    requests: int = 3
    """N: concurrent requests per burst (mixed: N demo clicks and N API calls)."""
    seconds: float = 1.0
    """S: work per sleep/CPU request."""
    cpu_seconds: float | None = None
    """Work per CPU request; ``seconds`` when None."""
    steps: int = 4
    repeat: int = DEFAULT_REPEATS
    """R: how many times each burst is fired."""
    fail_fast: bool = False
    start_timeout: float = DEFAULT_START_TIMEOUT
    cpu_rate: float | None = None

    def __post_init__(self) -> None:
        unknown = [s for s in self.scenarios if s not in ALL_SCENARIOS]
        if unknown:
            raise ConfigError(f"unknown scenario {unknown[0]!r}: expected some of {', '.join(ALL_SCENARIOS)}")
        if not self.scenarios:
            raise ConfigError("no scenario given")
        if not 1 <= self.requests <= MAX_REQUESTS:
            raise ConfigError(f"requests = {self.requests}: expected 1 to {MAX_REQUESTS}")
        if not 0 < self.seconds <= MAX_SECONDS:
            raise ConfigError(f"seconds = {self.seconds:g}: expected more than 0 and at most {MAX_SECONDS:g}")
        if self.cpu_seconds is not None and not 0 < self.cpu_seconds <= MAX_SECONDS:
            raise ConfigError(f"cpu_seconds = {self.cpu_seconds:g}: expected more than 0 and at most {MAX_SECONDS:g}")
        if not 1 <= self.repeat <= MAX_REPEATS:
            raise ConfigError(f"repeat = {self.repeat}: expected 1 to {MAX_REPEATS}")
        if not 1 <= self.steps <= MAX_STEPS:
            raise ConfigError(f"steps = {self.steps}: expected 1 to {MAX_STEPS}")
        if self.start_timeout <= 0:
            raise ConfigError(f"start_timeout = {self.start_timeout:g}: expected more than 0")

    @classmethod
    def seeded(cls, **kwargs: object) -> ProbeOptions:
        """The write-up's durations: 10 s sleeps and ~8 s CPU loops."""
        return cls(seconds=SEED_SLEEP_S, cpu_seconds=SEED_CPU_S, **kwargs)  # type: ignore[arg-type]

    @property
    def cpu_s(self) -> float:
        """Seconds per CPU request."""
        return self.cpu_seconds if self.cpu_seconds is not None else self.seconds


@dataclass(frozen=True, kw_only=True)
class ProgressEvent:
    """Where the probe is, for live progress displays."""

    index: int
    total: int
    profile: str
    phase: str
    """``starting``, a scenario name, ``stopping``, ``done``, ``did_not_start``."""
    detail: str = ""
    expected_seconds: float = 0.0
    """For a scenario: how long its burst should take at least."""


@dataclass(frozen=True, kw_only=True)
class ProfileTarget:
    """A profile to probe and the file it came from (None: built in)."""

    profile: Profile
    source: Path | None = None
    conformance: Conformance | None = None
    """Its backend's server conformance check in this run (behind the disconnect relay when the profile has it):
    what the expectations predict the demo from."""
    relayed: Conformance | None = None
    """Its backend's check behind the disconnect relay, when run: what the advice on a server defect says."""


@dataclass(kw_only=True)
class _State:
    results: list[ProfileResult] = field(default_factory=list)
    complete: bool = True
    conformance: tuple[Conformance, ...] = ()


@dataclass(kw_only=True)
class _Pending:
    """A profile whose timeout scenario runs at the end, beside the other profiles' (see :func:`_run_timeouts`)."""

    target: ProfileTarget
    report: Callable[[str, str, float], None]


@dataclass(kw_only=True)
class _Stopping:
    """Profiles being stopped in the background while the next one starts (a stop measures nothing).

    :meth:`wait` is called before any burst, so no CPU-measuring burst ever
    runs while a server stops; ``on_finished`` gets each stopped profile's
    result there, in the probe's own thread.
    """

    on_finished: Callable[[ProfileResult], None]
    threads: list[tuple[str, threading.Thread, list[ProfileResult]]] = field(default_factory=list)

    def begin(self, name: str, stop: Callable[[], ProfileResult]) -> None:
        """Run ``stop`` (stop, judge, append) in a thread."""
        holder: list[ProfileResult] = []
        thread = threading.Thread(target=lambda: holder.append(stop()), name=f"launch-stop-{name}", daemon=True)
        thread.start()
        self.threads.append((name, thread, holder))

    def busy(self) -> tuple[str, ...]:
        """``stop:PROFILE`` for each stop still running."""
        return tuple(f"stop:{name}" for name, thread, _ in self.threads if thread.is_alive())

    def wait(self) -> None:
        """Wait for every stop in progress and hand over its result.

        Each stop leaves the list only once its result is handed over, so a
        Ctrl-C during the wait loses nothing: the wait after it, in the
        probe's clean-up, picks up where this one was interrupted.
        """
        while self.threads:
            _name, thread, holder = self.threads[0]
            thread.join()
            self.threads.pop(0)
            for result in holder:
                self.on_finished(result)


def plan(scenario: str, profile: Profile, options: ProbeOptions) -> list[RequestSpec]:
    """The requests of one burst; API paths under the profile's API prefix (``/api`` in the split topology)."""
    specs = _plan(scenario, profile, options)
    if not profile.api_prefix:
        return specs
    return [
        dataclasses.replace(spec, path=profile.api_prefix + spec.path) if spec.kind == Kind.API and spec.path else spec
        for spec in specs
    ]


def _plan(scenario: str, profile: Profile, options: ProbeOptions) -> list[RequestSpec]:
    n, s = options.requests, options.seconds
    if scenario == "sleep":
        return [RequestSpec(kind=Kind.API, work="sleep", path=f"/test1?seconds={s:g}") for _ in range(n)]
    if scenario == "cpu":
        return [RequestSpec(kind=Kind.API, work="cpu", path=f"/test2?seconds={options.cpu_s:g}") for _ in range(n)]
    if scenario == "generate":
        return [
            RequestSpec(kind=Kind.API, work="generate", path=f"/generate?steps={options.steps}&seed={i}&format=json")
            for i in range(n)
        ]
    if scenario == "mixed":
        # Demo clicks first, API calls 50 ms later: the write-up's experiment,
        # and the order that shows whether a later API call can overtake.
        demo = [RequestSpec(kind=Kind.DEMO, work="sleep", api_name="/sleep", args=(s,)) for _ in range(n)]
        api = [RequestSpec(kind=Kind.API, work="sleep", path=f"/test1?seconds={s:g}", delay_s=0.05) for _ in range(n)]
        return demo + api
    if scenario == "timeout":
        return [
            RequestSpec(kind=Kind.API, work="sleep", path=f"/test1?seconds={profile.timeout + TIMEOUT_OVERSHOOT_S:g}")
        ]
    if scenario == "noawait":
        # One lone API call, then a demo click and an API call at once: does
        # the error need simultaneity, as the write-up says, or only the missing await?
        return [
            RequestSpec(kind=Kind.API, work="noawait", path="/lab/noawait"),
            RequestSpec(kind=Kind.DEMO, work="noawait", api_name="/lab_noawait", delay_s=0.3),
            RequestSpec(kind=Kind.API, work="noawait", path="/lab/noawait", delay_s=0.3),
        ]
    if scenario == "slowclients":
        return []
    raise ValueError(f"no burst for scenario {scenario!r}")


@dataclass(frozen=True, kw_only=True)
class DeferredPlan:
    """The timeout scenarios a run will defer to its end (one batch, side by side): for the time estimate."""

    count: int = 0
    seconds: float = 0.0
    """How long the longest of their requests lasts (its profile's timeout and the overshoot)."""


def deferred_plan(targets: Sequence[ProfileTarget], scenarios: Sequence[str]) -> DeferredPlan:
    """What :func:`run_probe` will run at the end for ``targets`` with ``scenarios`` (see :func:`_run_timeouts`)."""
    if "timeout" not in scenarios:
        return DeferredPlan()
    timeouts = [t.profile.timeout for t in targets if applies("timeout", t.profile)]
    return DeferredPlan(count=len(timeouts), seconds=max(timeouts, default=0.0) + TIMEOUT_OVERSHOOT_S * bool(timeouts))


def applies(scenario: str, profile: Profile) -> bool:
    """Whether ``scenario`` means anything for ``profile`` (only gunicorn's arbiter has a worker timeout)."""
    if scenario == "timeout":
        return profile.backend in ("gunicorn", "gunicorn-asgi") and profile.timeout + TIMEOUT_OVERSHOOT_S <= MAX_SECONDS
    if scenario == "generate":
        return profile.model != "none"
    if scenario == "noawait":
        # One worker: a split demo queue would muddle what the error comes from.
        return profile.workers == 1
    return scenario in BURST_SCENARIOS


MEASURED_PACKAGES: tuple[str, ...] = (
    "uvicorn",
    "gunicorn",
    "hypercorn",
    "granian",
    "uvicorn-worker",
    "fastapi",
    "gradio",
    "torch",
    "diffusers",
)


def cpu_model() -> str | None:
    """The CPU's model name (``/proc/cpuinfo``), None where it cannot be read.

    Part of what ``launch compare`` checks to tell two machines apart.
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "cpu model"):
                    return value.strip() or None
    except OSError:
        return None
    return None


def machine_info(packages: tuple[str, ...] = MEASURED_PACKAGES) -> dict[str, Any]:
    """Cores, Python and the versions of ``packages`` (None: not installed)."""
    versions: dict[str, str | None] = {}
    for package in packages:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cores": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
    }


def _wait_settled(url: str, timeout: float = 30.0) -> None:
    # Between bursts: wait until the server answers health promptly again
    # (a worker killed by the timeout scenario is being replaced, say).
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not health_ok(url):
        time.sleep(0.1)


def _cpu_used(before: dict[int, float | None]) -> dict[str, float]:
    """CPU seconds each pid used since ``before`` (pids that died are left out)."""
    used: dict[str, float] = {}
    for pid, start in before.items():
        end = procs.cpu_seconds(pid)
        if start is not None and end is not None:
            used[str(pid)] = round(end - start, 3)
    return used


def _burst_timeout(specs: Sequence[RequestSpec], options: ProbeOptions, profile: Profile) -> float:
    # Generous and bounded: every request done one after another, three
    # times over, plus start-up slack for workers replaced mid-burst.
    per_request = max(options.seconds, options.cpu_s, profile.timeout + TIMEOUT_OVERSHOOT_S if len(specs) == 1 else 0)
    return 3 * len(specs) * per_request + 30


def probe_profile(
    target: ProfileTarget,
    options: ProbeOptions,
    *,
    cores: int,
    cpu_rate: float,
    report: Callable[[str, str, float], None],
    results: list[ProfileResult],
    pending: list[_Pending] | None = None,
    stopping: _Stopping | None = None,
) -> ProfileResult | None:
    """Start one profile, run its scenarios, stop it; never leaves it running.

    The result is appended to ``results`` even when Ctrl-C ends the run
    mid-profile, so what was measured is kept. With ``pending`` (a list), the
    timeout scenario is not fired here: the profile goes on that list, for
    :func:`_run_timeouts`. With
    ``stopping``, the server is stopped in the background after its bursts
    (returns None; the result reaches ``stopping.on_finished``), and this
    profile's start overlaps the stop of the previous one, never a burst.
    """
    profile = target.profile
    server = _server_for(target, options, cpu_rate)
    start_overlaps = stopping.busy() if stopping is not None else ()
    try:
        report("starting", "", 0.0)  # inside: a Ctrl-C from here on leaves this profile's result, interrupted
        server.start(timeout=options.start_timeout)
    except KeyboardInterrupt:
        results.append(
            ProfileResult(
                profile=profile,
                source=str(target.source) if target.source else None,
                status=Status.INTERRUPTED,
                error="interrupted while starting",
                log_tail=server.log_tail(),
            )
        )
        server.cleanup()
        raise
    except StartupError as exc:
        report("did_not_start", str(exc), 0.0)
        result = ProfileResult(
            profile=profile,
            source=str(target.source) if target.source else None,
            status=Status.DID_NOT_START,
            error=str(exc),
            log_tail=server.log_tail(),
        )
        server.cleanup()
        results.append(result)
        return result
    scenarios: list[ScenarioResult] = []
    status = Status.OK
    background = False
    try:
        if stopping is not None:
            stopping.wait()  # no burst while another server stops
        for scenario in options.scenarios:
            if not applies(scenario, profile):
                continue
            if scenario == "timeout" and pending is not None:
                pending.append(_Pending(target=target, report=report))
                continue
            repeats = 1 if scenario in ONCE_SCENARIOS else options.repeat
            for repeat in range(repeats):
                if not server.alive():
                    status = Status.DIED
                    break
                scenarios.append(
                    _run_scenario(
                        server,
                        profile,
                        scenario,
                        repeat=repeat,
                        repeats=repeats,
                        options=options,
                        cores=cores,
                        report=report,
                        conformance=target.conformance,
                    )
                )
            if status != Status.OK:
                break
    except KeyboardInterrupt:
        status = Status.INTERRUPTED
        raise
    finally:
        if stopping is not None and status == Status.OK:
            background = True
            stopping.begin(
                profile.name,
                functools.partial(
                    _finish,
                    target,
                    server,
                    scenarios,
                    status,
                    report=report,
                    results=results,
                    start_overlaps=start_overlaps,
                ),
            )
        else:
            _finish(target, server, scenarios, status, report=report, results=results, start_overlaps=start_overlaps)
    return None if background else results[-1]


def _finish(
    target: ProfileTarget,
    server: ServerProcess,
    scenarios: list[ScenarioResult],
    status: Status,
    *,
    report: Callable[[str, str, float], None],
    results: list[ProfileResult],
    start_overlaps: tuple[str, ...] = (),
) -> ProfileResult:
    """Stop ``server``, judge what it measured and append the result to ``results``."""
    profile = target.profile
    report("stopping", "", 0.0)
    with interrupts.shielded():
        interrupts.hold("stop")  # beside the next profile's start, when in the background
        stopped = server.stop()
    final = ProfileResult(
        profile=profile,
        source=str(target.source) if target.source else None,
        status=status,
        ready_seconds=server.ready_seconds,
        pids=server.pids,
        launcher_pid=server.pid,
        log_tail=server.log_tail(),
        scenarios=tuple(scenarios),
        stop_seconds=stopped.seconds,
        stop_forced=stopped.forced,
        start_overlapped_with=start_overlaps,
    )
    server.cleanup()
    final = dataclasses.replace(final, assessment=assess(final, target.conformance, relayed=target.relayed))
    results.append(final)
    return final


def _run_timeouts(
    pending: list[_Pending], options: ProbeOptions, *, cores: int, cpu_rate: float, results: list[ProfileResult]
) -> dict[str, str]:
    """Run the pending timeout scenarios side by side, each on a fresh server of its profile; merge them in.

    Called once every other burst of the run is done, so nothing here
    overlaps a CPU measurement. Each request sleeps, or blocks its worker's
    event loop, past the profile's own timeout (30 s by default) on a server
    started for it the way the profile's first one was: a wait, and the same
    evidence as fired on the first server, which the scenario does not depend
    on. Not kept alive from the bursts: an idle server is not free (an idle
    gunicorn worker used 5 % of a core here), and it would have disturbed the
    later profiles' bursts. The servers start side by side too (their start
    times are not the profile's figures), in batches that fit in memory, and
    stop side by side too. Each scenario is appended to its profile's result,
    which is judged again. Returns, for each profile, its batch's size and wall time in words.
    """
    interrupts.raise_if_stopped()
    batches: list[list[_Pending]] = []
    room = available_mib()[0]
    ok = {r.name for r in results if r.status == Status.OK}
    for item in pending:
        if item.target.profile.name not in ok:
            continue  # its server died or was interrupted during the bursts: no timeout scenario, as before
        need = estimate(item.target.profile).mib
        if not batches or need > room:
            batches.append([])
            room = available_mib()[0]
        batches[-1].append(item)
        room -= need
    pending.clear()
    walls: dict[str, str] = {}
    for batch in batches:
        began = time.monotonic()
        _run_timeout_batch(batch, options, cores=cores, cpu_rate=cpu_rate, results=results)
        wall = f"batch of {len(batch)} in {time.monotonic() - began:.0f} s"
        walls.update({item.target.profile.name: wall for item in batch})
    return walls


def _run_timeout_batch(
    batch: list[_Pending], options: ProbeOptions, *, cores: int, cpu_rate: float, results: list[ProfileResult]
) -> None:
    names = [item.target.profile.name for item in batch]
    servers = [_server_for(item.target, options, cpu_rate) for item in batch]
    done: dict[int, ScenarioResult] = {}
    errors: dict[int, str] = {}
    # Starting a server is CPU-bound (imports, the model), waiting for a timeout is not: at most one start per
    # core at a time, each server firing as soon as it is ready. gunicorn kills a worker that boots for longer
    # than its timeout, and twelve boots at once on 2 cores come close (ready in 14-46 s one per core at a time
    # under a load average of 8). (The second WORKER TIMEOUT of an async scenario was the client's silent
    # resend: see launcher.probe.client.probe_session.)
    starting = threading.Semaphore(max(1, cores))

    def start_and_fire(index: int) -> None:
        item, server = batch[index], servers[index]
        if interrupts.stopped():
            return
        try:
            with starting:
                if interrupts.stopped():
                    return
                server.start(timeout=options.start_timeout)
        except StartupError as exc:
            errors[index] = str(exc)
            return
        interrupts.hold("timeouts")  # the batch's servers up, the request not sent: where a test may hold
        if interrupts.stopped():
            return  # Ctrl-C: the main thread is stopping the servers
        others = tuple(f"timeout:{n}" for j, n in enumerate(names) if j != index)
        fired_at = len(server.log_text())
        measured = _run_scenario(
            server,
            item.target.profile,
            "timeout",
            repeat=0,
            repeats=1,
            options=options,
            cores=cores,
            report=lambda phase, detail, expected: None,
            overlapped_with=others,
            conformance=item.target.conformance,
        )
        measured = _with_timeout_line(server, item.target, measured, since=fired_at, cores=cores)
        # The scenario is in (the client's answer, and the WORKER TIMEOUT line where one is expected): stop this
        # server now, so that its replacement worker does not boot beside the batch's other starts.
        took = (measured.finished_ns - measured.started_ns) / 1e9
        stopped = server.stop()
        done[index] = dataclasses.replace(
            measured,
            note=f"own server (launcher pid {server.pid}), started for this scenario: ready in "
            f"{server.ready_seconds:.1f} s, the scenario took {took:.1f} s, stopped in {stopped.seconds:.1f} s",
        )

    for item in batch:
        item.report(
            "timeout",
            f"1 request on a fresh server, side by side with {len(batch) - 1} other(s)",
            item.target.profile.timeout + TIMEOUT_OVERSHOOT_S,
        )
    # Started one at a time here, fired together: a thread per profile only waits (start, then the request).
    threads = [threading.Thread(target=start_and_fire, args=(i,), daemon=True) for i in range(len(batch))]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        # Whatever happened, Ctrl-C included: every server stopped, side by side (each stop waits for its
        # server's request in flight, if any). A second pass catches a start that a Ctrl-C overtook.
        with interrupts.shielded():
            _stop_all(servers)
            for thread in threads:
                thread.join(timeout=DEFAULT_STOP_TIMEOUT)
            _stop_all(servers)
    for index in range(len(batch)):
        position = max((i for i, r in enumerate(results) if r.name == names[index]), default=None)
        if position is None:
            continue
        old = results[position]
        if index in done:
            merged = dataclasses.replace(old, scenarios=(*old.scenarios, done[index]))
        else:  # its server did not start: the scenario is missing, and the result says why
            merged = dataclasses.replace(old, error=old.error or f"timeout scenario: {errors.get(index, 'not run')}")
        target = batch[index].target
        results[position] = dataclasses.replace(
            merged, assessment=assess(merged, target.conformance, relayed=target.relayed)
        )


TIMEOUT_LINE_WAIT_S = 5.0
"""How long after the client's answer the arbiter's WORKER TIMEOUT line may take to reach the log."""


def _with_timeout_line(
    server: ServerProcess, target: ProfileTarget, measured: ScenarioResult, *, since: int, cores: int
) -> ScenarioResult:
    """``measured``, with the WORKER TIMEOUT line when the profile expects one and it came after the answer.

    ``since``: where the log stood when the scenario's request was fired.
    """
    profile = target.profile
    if profile.handler_mode != HandlerMode.ASYNC or timeout_events(measured.log_events):
        return measured
    deadline = time.monotonic() + TIMEOUT_LINE_WAIT_S
    while time.monotonic() < deadline:
        events = parse_log_events(server.log_text()[since:])
        if timeout_events(events):
            # Everything logged since the fire: the scenario's own events, and the line that came late.
            updated = dataclasses.replace(measured, log_events=tuple(events))
            verdicts = expectations(profile, updated, cores=cores, conformance=target.conformance)
            return dataclasses.replace(updated, verdicts=tuple(verdicts))
        time.sleep(0.1)
    return measured


def _stop_all(servers: Sequence[ServerProcess]) -> None:
    """Stop ``servers`` side by side (the stops only wait) and remove their logs."""
    threads = [threading.Thread(target=server.stop, name="launch-stop", daemon=True) for server in servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for server in servers:
        server.cleanup()


def _server_for(target: ProfileTarget, options: ProbeOptions, cpu_rate: float) -> ServerProcess:
    """The child that serves ``target`` for the probe."""
    return ServerProcess(
        profile=target.profile,
        profiles_files=(target.source,) if target.source else (),
        env={"LAUNCH_CPU_RATE": repr(cpu_rate)},
        attribution=True,
        lab="noawait" in options.scenarios,
    )


def _run_scenario(
    server: ServerProcess,
    profile: Profile,
    scenario: str,
    *,
    repeat: int,
    repeats: int,
    options: ProbeOptions,
    cores: int,
    report: Callable[[str, str, float], None],
    overlapped_with: tuple[str, ...] = (),
    conformance: Conformance | None = None,
) -> ScenarioResult:
    """Fire one burst of ``scenario`` at a ready server and judge it."""
    specs = plan(scenario, profile, options)
    expected = {
        "sleep": options.seconds,
        "mixed": options.seconds,
        "cpu": options.cpu_s,
        "timeout": profile.timeout + TIMEOUT_OVERSHOOT_S,
        "slowclients": SLOW_CLIENT_SECONDS,
    }.get(scenario, 0.0)  # generate: depends on the model and the device
    what = f"{len(specs) or SLOW_CLIENTS} {'requests' if specs else 'stalled clients'}"
    report(scenario, what + (f", repeat {repeat + 1}/{repeats}" if repeats > 1 else ""), expected)
    _wait_settled(server.url)
    pids = server.worker_pids_now()
    cpu_before = {pid: procs.cpu_seconds(pid) for pid in pids}
    log_offset = len(server.log_text())
    started = time.monotonic_ns()
    if scenario == "slowclients":
        burst = run_slow_clients(server.url, clients=SLOW_CLIENTS, seconds=SLOW_CLIENT_SECONDS, timeout=10)
    else:
        burst = run_burst(
            server.url,
            specs,
            timeout=_burst_timeout(specs, options, profile),
            workers=profile.workers,
            health="liveness" in options.scenarios,
            phase=f"burst:{scenario}",
        )
    records = interrupts.run(burst)  # asyncio.run, but a Ctrl-C cannot be lost in it
    finished = time.monotonic_ns()
    log = server.log_text()[log_offset:]
    measured = ScenarioResult(
        scenario=scenario,
        n=len(specs) or SLOW_CLIENTS,
        seconds=options.cpu_s if scenario == "cpu" else options.seconds,
        started_ns=started,
        finished_ns=finished,
        records=tuple(records),
        log_events=tuple(parse_log_events(log)),
        cpu_seconds=_cpu_used(cpu_before),
        repeat=repeat,
        note=_server_error(log) if scenario == "noawait" else "",
        overlapped_with=overlapped_with,
    )
    verdicts = expectations(profile, measured, cores=cores, conformance=conformance)
    return dataclasses.replace(measured, verdicts=tuple(verdicts))


def _server_error(log: str) -> str:
    """The distinct exception lines the server logged (what a failing route really raised), joined by " | "."""
    found: list[str] = []
    for raw in log.splitlines():
        line = raw.strip()[:300]
        if _EXCEPTION_LINE.match(line) and line not in found:
            found.append(line)
    return " | ".join(found[-3:])


def run_probe(
    targets: Sequence[ProfileTarget],
    options: ProbeOptions,
    *,
    progress: Callable[[ProgressEvent], None] | None = None,
    on_profile: Callable[[ProbeRun], None] | None = None,
    done: Sequence[ProfileResult] = (),
) -> ProbeRun:
    """Probe every target in order; on Ctrl-C return what was gathered, marked incomplete.

    ``on_profile`` gets the run so far (marked incomplete) after every finished
    profile: the checkpoint to save. ``done`` are results of an earlier,
    interrupted run of the same plan (``launch probe --resume``): they come
    first in the run, are judged with the new ones, and are not probed again.
    """
    cores = len(os.sched_getaffinity(0))
    state = _State(results=list(done))
    try:
        interrupts.reached("calibration")
        cpu_rate = options.cpu_rate or calibrate_cpu_rate()
    except KeyboardInterrupt:
        state.complete = False
        return _run_of(state, options, cores=cores, cpu_rate=None, complete=False)
    try:
        # Once per backend, before any profile: the expectations predict its demo clicks (the mixed scenario)
        # from it. A run without demo clicks has nothing for it to predict.
        if "mixed" in options.scenarios:
            checking = _conformance_progress(progress, len(targets))
            # The server that serves the demo: a split profile's demo group is uvicorn, whatever its API group runs.
            wanted = [(t.profile.demo_backend, t.profile.disconnect_relay) for t in targets]
            state.conformance = check_backends(wanted, progress=checking)
            # A backend whose server breaks Gradio's event stream is checked behind the disconnect relay too, so
            # that its profiles' advice can say whether the workaround works with this server.
            relayed = [(c.backend, True) for c in state.conformance if not c.relay and c.server_defect]
            state.conformance += check_backends([w for w in relayed if w not in wanted], progress=checking)
    except KeyboardInterrupt:
        state.complete = False
        return _run_of(state, options, cores=cores, cpu_rate=cpu_rate, complete=False)
    checked = {(c.backend, c.relay): c for c in state.conformance}
    targets = [
        dataclasses.replace(
            t,
            conformance=checked.get((t.profile.demo_backend, t.profile.disconnect_relay)),
            relayed=checked.get((t.profile.demo_backend, True)),
        )
        for t in targets
    ]
    total = len(targets)
    # Profiles whose timeout scenario runs at the end, side by side with the others' (see _run_timeouts).
    pending: list[_Pending] = []
    reporters: dict[str, Callable[[str, str, float], None]] = {}
    failed_fast = False

    def stopped(result: ProfileResult) -> None:
        nonlocal failed_fast
        reporters[result.name]("done", "passed" if result.passed else "failed", 0.0)
        if on_profile is not None:
            on_profile(_run_of(state, options, cores=cores, cpu_rate=cpu_rate, complete=False))
        failed_fast = failed_fast or (options.fail_fast and not result.passed)

    # With --fail-fast a failure must be known before the next profile starts: stops stay in line.
    stopping = None if options.fail_fast else _Stopping(on_finished=stopped)

    for index, target in enumerate(targets, start=1):

        def report(phase: str, detail: str, expected: float, _i: int = index, _t: ProfileTarget = target) -> None:
            if progress is not None:
                progress(
                    ProgressEvent(
                        index=_i,
                        total=total,
                        profile=_t.profile.name,
                        phase=phase,
                        detail=detail,
                        expected_seconds=expected,
                    )
                )

        reporters[target.profile.name] = report
        try:
            interrupts.raise_if_stopped()
            result = probe_profile(
                target,
                options,
                cores=cores,
                cpu_rate=cpu_rate,
                report=report,
                results=state.results,
                pending=pending,
                stopping=stopping,
            )
        except KeyboardInterrupt:
            state.complete = False
            break
        if result is None:
            continue  # stopping in the background: reported by ``stopped``
        report("done", "passed" if result.passed else "failed", 0.0)
        if on_profile is not None:
            on_profile(_run_of(state, options, cores=cores, cpu_rate=cpu_rate, complete=False))
        if options.fail_fast and not result.passed:
            break
    try:
        if stopping is not None:
            stopping.wait()
        if pending and state.complete and not failed_fast:
            timed = list(pending)
            walls = _run_timeouts(pending, options, cores=cores, cpu_rate=cpu_rate, results=state.results)
            for item in timed:
                wall = walls.get(item.target.profile.name)
                item.report("done", "timeout scenario merged" + (f" ({wall})" if wall else ""), 0.0)
            if on_profile is not None:
                on_profile(_run_of(state, options, cores=cores, cpu_rate=cpu_rate, complete=False))
    except KeyboardInterrupt:
        state.complete = False
    finally:
        if stopping is not None:
            stopping.wait()
        pending.clear()
    if interrupts.stopped() is not None:
        state.complete = False  # even a signal that landed while the last server stopped (recorded, not raised)
    # In the order they were probed, whichever finished first.
    position = {t.profile.name: i for i, t in enumerate(targets)}
    state.results.sort(key=lambda r: (r not in done, position.get(r.name, -1)))
    return _run_of(state, options, cores=cores, cpu_rate=cpu_rate, complete=state.complete)


def _conformance_progress(
    progress: Callable[[ProgressEvent], None] | None, total: int
) -> Callable[[str, str], None] | None:
    """Progress for the conformance check: one event per backend, as a phase of no profile yet (index 0)."""
    if progress is None:
        return None

    def report(backend: str, detail: str) -> None:
        progress(
            ProgressEvent(
                index=0,
                total=total,
                profile=backend,
                phase="conformance",
                detail=detail,
                expected_seconds=STREAM_SECONDS,
            )
        )

    return report


def _run_of(state: _State, options: ProbeOptions, *, cores: int, cpu_rate: float | None, complete: bool) -> ProbeRun:
    """The run over the results so far, judged (claims, recommendation) over them."""
    results = tuple(state.results)
    claims, recommendation = judge(results, cores=cores)
    return ProbeRun(
        created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        machine={**machine_info(), "cpu_rate": cpu_rate},
        options={
            "scenarios": list(options.scenarios),
            "requests": options.requests,
            "seconds": options.seconds,
            "cpu_seconds": options.cpu_s,
            "steps": options.steps,
            "repeat": options.repeat,
        },
        profiles=results,
        claims=claims,
        recommendation=recommendation,
        complete=complete,
        conformance=state.conformance,
    )
