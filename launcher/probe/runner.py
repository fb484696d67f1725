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
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from app.settings import HandlerMode
from app.work import calibrate_cpu_rate
from launcher import interrupts, procs
from launcher.child import _EXCEPTION_LINE, DEFAULT_STOP_TIMEOUT, ServerProcess
from launcher.errors import StartupError
from launcher.probe.assess import assess
from launcher.probe.client import run_burst, run_slow_clients
from launcher.probe.conformance import STREAM_SECONDS, check_backends
from launcher.probe.expectations import expectations, timeout_events
from launcher.probe.judge import judge
from launcher.probe.logs import parse_log_events
from launcher.probe.machine import machine_info
from launcher.probe.memory import available_mib, estimate
from launcher.probe.model import Conformance, ProbeRun, ProfileResult, ScenarioResult, Status
from launcher.probe.scenarios import (
    ONCE_SCENARIOS,
    SLOW_CLIENT_SECONDS,
    SLOW_CLIENTS,
    TIMEOUT_OVERSHOOT_S,
    ProbeOptions,
    ProfileTarget,
    applies,
    burst_timeout,
    plan,
)
from launcher.server import health_ok
from profiles.model import Profile


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
            timeout=burst_timeout(specs, options, profile),
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
