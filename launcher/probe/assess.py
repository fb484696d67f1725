"""A profile's second verdict: fit to serve. Pure functions, no I/O.

The expectation model (:mod:`launcher.probe.expectations`) says whether a
profile behaved *as predicted*. This module says whether it is *fit to
serve* one model per worker with its demo:

- no work request and no demo click was lost, in any repeat;
- the Gradio demo is not split over processes (a structural hazard: each
  process holds its own queue, so a click's queue join and its event stream
  can reach different ones -- evidence even in a run where every click
  happened to succeed);
- liveness is ``fast`` (see :func:`liveness`);
- model access is serialized per worker;
- the server stopped within its grace period (no SIGKILL needed).

Every rule is stated so that it holds whatever the kernel's spread of
connections over workers: per pid, or structural.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from app.settings import HandlerMode
from launcher.probe import metrics
from launcher.probe.model import (
    Assessment,
    Conformance,
    Figure,
    Kind,
    Liveness,
    ProfileResult,
    RequestRecord,
    ScenarioResult,
    Status,
)

LIVENESS_DEGRADED_P50_S = 0.100
"""A /health check sent while work ran, answered after this (median over every such
check of the profile) means the event loop was starved. Measured here with the
machine loaded by four other jobs: offload (one CPU thread beside the loop) 20 ms
median, sync (three CPU threads beside the loop) 208 ms; the line sits 5x above
the first and 2x below the second."""

LIVENESS_MIN_CHECKS = 5
"""Fewer checks during work than this grade nothing by measurement (too few to have a median)."""

UNJUDGED_SCENARIOS = ("timeout", "noawait", "slowclients")
"""Scenarios that reproduce a failure on purpose: their lost requests are the finding, not unfitness."""

STRUCTURAL_GIL = (
    "GIL contention by construction: concurrent CPU requests run in threads of one process beside its event loop"
)


def figure(values: Sequence[float]) -> Figure:
    """Median and spread of one figure over the repeats."""
    if not values:
        return Figure(median=0.0, low=0.0, high=0.0, samples=0)
    return Figure(median=statistics.median(values), low=min(values), high=max(values), samples=len(values))


def demo_pids(scenarios: Iterable[ScenarioResult]) -> tuple[int, ...]:
    """Every pid that answered a Gradio queue request (join, stream) or ran a demo click."""
    pids: set[int] = set()
    for scenario in scenarios:
        for record in scenario.records:
            if record.kind != Kind.DEMO:
                continue
            pids.update(record.steps.values())
            if record.pid is not None:
                pids.add(record.pid)
    return tuple(sorted(pids))


def split_clicks(records: Iterable[RequestRecord]) -> list[RequestRecord]:
    """Demo clicks whose steps (join, stream, result) were answered by more than one process."""
    split = []
    for record in records:
        if record.kind != Kind.DEMO:
            continue
        pids = set(record.steps.values()) | ({record.pid} if record.pid is not None else set())
        if len(pids) > 1:
            split.append(record)
    return split


def has_demo(result: ProfileResult) -> bool:
    """Whether the profile serves the Gradio demo: some process of it holds one.

    Every topology of the reference service does today (each worker, or the split
    topology's demo replica); the rules that need a demo ask here, not the backend.
    """
    return result.profile.demo_processes > 0


def demo_hazard(result: ProfileResult) -> str | None:
    """The "demo split over N processes" hazard, structural or observed; None when the demo lives in one process."""
    # Processes that hold the demo: every worker, but one replica in the split topology (its API replicas hold none).
    workers = result.profile.demo_processes
    pids = demo_pids(result.scenarios)
    split = [r for s in result.scenarios for r in split_clicks(s.records)]
    if not has_demo(result):
        return None
    if workers > 1 or len(pids) > 1:
        seen = f"queue requests answered by pids {', '.join(map(str, pids))}" if pids else "no click recorded"
        parts = [f"demo split over {max(workers, len(pids))} processes: each holds its own Gradio queue ({seen}"]
        if split:
            parts.append(f"; {len(split)} click(s) had their steps answered by different processes")
        return "".join(parts) + ")"
    return None


def _checks_during_work(scenario: ScenarioResult) -> list[float]:
    """Latencies of the health checks sent while their own worker was running work."""
    work_by_pid = metrics.by_pid(metrics.work_records(scenario.records))
    found: list[float] = []
    for check in scenario.records:
        if check.kind != Kind.HEALTH or not check.ok or check.pid is None:
            continue
        for work in work_by_pid.get(check.pid, []):
            start, end = metrics.interval(work)
            if start < check.sent_ns < end:
                found.append(metrics.health_latency(check))
                break
    return found


def _blocked(scenario: ScenarioResult) -> bool:
    """Some work interval had two or more health checks sent inside it, and every one waited for its end.

    A starved loop (GIL contention) answers late but before the work ends,
    or answers some checks and not others; a loop that runs the work itself
    answers none of them until the work returns.
    """
    epsilon = metrics.OVERLAP_EPSILON_NS * 5
    checks_by_pid = metrics.by_pid(r for r in scenario.records if r.kind == Kind.HEALTH and r.ok)
    for pid, works in metrics.by_pid(metrics.work_records(scenario.records)).items():
        for work in works:
            start, end = metrics.interval(work)
            inside = [c for c in checks_by_pid.get(pid, []) if start + epsilon < c.sent_ns < end - epsilon]
            answered = [c.end_ns if c.end_ns is not None else c.received_ns for c in inside]
            if len(inside) >= 2 and all(t >= end - epsilon for t in answered):
                return True
    return False


_SEVERITY: dict[Liveness, int] = {Liveness.UNKNOWN: -1, Liveness.FAST: 0, Liveness.DEGRADED: 1, Liveness.BLOCKED: 2}
"""Which class is worse: a profile's class is its worst scenario's."""


@dataclass(frozen=True, kw_only=True)
class ScenarioLiveness:
    """How /health fared in one scenario (its repeats pooled)."""

    scenario: str
    """The scenario's name; empty when the class holds by construction in every scenario (``async`` mode)."""
    grade: Liveness
    evidence: str


def _figures(scenarios: Sequence[ScenarioResult]) -> tuple[str, list[float], float]:
    during = [x for s in scenarios for x in _checks_during_work(s)]
    all_checks = [x for s in scenarios for x in metrics.health_latencies(s.records)]
    p50 = metrics.percentile(during, 50) or 0.0
    p99 = metrics.percentile(all_checks, 99) or 0.0
    text = (
        f"median {p50 * 1000:.0f} ms over {len(during)} checks during work, "
        f"p99 {p99 * 1000:.0f} ms over {len(all_checks)}"
    )
    return text, during, p50


def liveness_by_scenario(result: ProfileResult) -> list[ScenarioLiveness]:
    """The liveness class of each scenario where /health was polled, in the order they ran.

    Each scenario is graded on its own checks (its repeats pooled): pooled over
    every scenario, a profile whose checks were slow only under CPU bursts kept
    ``fast`` (issue 24: hypercorn-1-offload's median 3 ms overall, 157-408 ms
    in its cpu bursts, in 4 of 5 runs).
    """
    polled: dict[str, list[ScenarioResult]] = {}
    for scenario in result.scenarios:
        if any(r.kind == Kind.HEALTH for r in scenario.records):
            polled.setdefault(scenario.scenario, []).append(scenario)
    mode = result.profile.handler_mode
    graded: list[ScenarioLiveness] = []
    for name, scenarios in polled.items():
        figures, during, p50 = _figures(scenarios)
        figures = f"{name}: {figures}"
        if any(_blocked(s) for s in scenarios):
            blocked = f"/health waits for the work: {figures}"
            graded.append(ScenarioLiveness(scenario=name, grade=Liveness.BLOCKED, evidence=blocked))
            continue
        cpu_concurrent = (
            name == "cpu"
            and any(s.n > 1 for s in scenarios)
            and (mode == HandlerMode.SYNC or (mode == HandlerMode.OFFLOAD and result.profile.limiter > 1))
        )
        if cpu_concurrent:
            gil = f"{STRUCTURAL_GIL}: {figures}"
            graded.append(ScenarioLiveness(scenario=name, grade=Liveness.DEGRADED, evidence=gil))
        elif len(during) >= LIVENESS_MIN_CHECKS and p50 > LIVENESS_DEGRADED_P50_S:
            starved = f"/health starved while work ran: {figures}"
            graded.append(ScenarioLiveness(scenario=name, grade=Liveness.DEGRADED, evidence=starved))
        else:
            graded.append(ScenarioLiveness(scenario=name, grade=Liveness.FAST, evidence=figures))
    return graded


def worst_liveness(result: ProfileResult) -> ScenarioLiveness:
    """The profile's liveness class: its worst scenario's, and that scenario.

    - ``blocked``: the work ran on the event loop (``async`` mode by
      construction, in every scenario; or measured: a check sent during work
      on its worker was answered only when that work ended).
    - ``degraded``: the event loop competed for the GIL with several CPU-bound
      threads of its own process: by construction in the cpu scenario when
      concurrent CPU requests run as threads (``sync`` mode, or ``offload``
      with a limiter above 1); or measured: the scenario's median check during
      work took over :data:`LIVENESS_DEGRADED_P50_S`.
    - ``fast``: neither, in every scenario.

    The structural part is what keeps a class from flipping between runs:
    GIL contention is a property of the set-up, and a lucky run with short
    waits does not remove it. The measured figures are reported either way.
    """
    graded = liveness_by_scenario(result)
    if not graded:
        return ScenarioLiveness(scenario="", grade=Liveness.UNKNOWN, evidence="/health was not polled")
    if result.profile.handler_mode == HandlerMode.ASYNC:
        polled = [s for s in result.scenarios if any(r.kind == Kind.HEALTH for r in s.records)]
        figures, _, _ = _figures(polled)
        blocked = f"/health waits for the work (async, by construction): {figures}"
        return ScenarioLiveness(scenario="", grade=Liveness.BLOCKED, evidence=blocked)
    # The first of the worst: the order the scenarios ran in is the run's plan, the same in every run.
    worst = max(graded, key=lambda g: _SEVERITY[g.grade])
    if worst.grade == Liveness.FAST:
        # No scenario decided anything: the figures over every scenario, and none named.
        polled = [s for s in result.scenarios if any(r.kind == Kind.HEALTH for r in s.records)]
        return ScenarioLiveness(scenario="", grade=Liveness.FAST, evidence=_figures(polled)[0])
    return worst


def liveness(result: ProfileResult) -> tuple[Liveness, str]:
    """The profile's liveness class and its evidence (see :func:`worst_liveness`)."""
    worst = worst_liveness(result)
    return worst.grade, worst.evidence


def total_makespans(result: ProfileResult) -> list[float]:
    """The total makespan of each repeat (scenarios that reproduce failures excluded)."""
    totals: dict[int, float] = {}
    for scenario in result.scenarios:
        if scenario.scenario in UNJUDGED_SCENARIOS:
            continue
        totals[scenario.repeat] = totals.get(scenario.repeat, 0.0) + metrics.makespan_s(scenario.records)
    return [totals[k] for k in sorted(totals)]


def count_processes(pids: Sequence[int], launcher_pid: int | None, workers: int) -> int:
    """Server processes: the worker ``pids`` seen (else ``workers``).

    The launcher that supervises them counts too, when it is a separate process.
    """
    count = len(pids) or workers
    if launcher_pid is not None and launcher_pid in pids:
        return count
    return count + 1 if count > 1 or launcher_pid is not None else count


def processes(result: ProfileResult) -> int:
    """Server processes the profile runs: its workers and, when separate, the launcher that supervises them."""
    return count_processes(result.pids, result.launcher_pid, result.profile.workers)


def server_defect(
    result: ProfileResult, conformance: Conformance | None, relayed: Conformance | None = None
) -> str | None:
    """The profile's ``server defect: MECHANISM (SERVER VERSION)``, or None.

    Set when it serves a demo on a server that breaks Gradio's event stream (its backend failed the check).
    """
    if conformance is None or not has_demo(result):
        return None
    defect = conformance.server_defect
    if defect is None or result.profile.disconnect_relay or relayed is None or relayed.error:
        return defect
    # The advice: whether the opt-in workaround passed the same check with this server.
    if relayed.server_defect is None:
        return f"{defect}; disconnect_relay = true passes the check"
    return f"{defect}; disconnect_relay = true does not help"


FORCED_STOP = "did not stop cleanly: SIGKILL needed after the grace period (a deploy or restart cuts in-flight work)"
"""The unfit reason of a server that had to be killed to stop: the same words for the reference and a user's app."""


def unfit_reasons(
    result: ProfileResult, live: Liveness, live_evidence: str, hazard: str | None, defect: str | None = None
) -> list[str]:
    """Why ``result`` is not fit to serve; empty when it is."""
    if result.status != Status.OK:
        return [f"status {result.status}" + (f": {result.error}" if result.error else "")]
    # The server's defect first: it is why the demo fails under this backend whatever the set-up.
    reasons: list[str] = [defect] if defect else []
    lost: dict[str, int] = {}
    for scenario in result.scenarios:
        if scenario.scenario in UNJUDGED_SCENARIOS:
            continue
        for error, count in metrics.errors_by_class(scenario.records).items():
            key = f"{scenario.scenario}: {error}"
            lost[key] = lost.get(key, 0) + count
    # The structural hazard first: it is why the profile fails, whatever this run's luck.
    if hazard:
        reasons.append(hazard)
    if lost:
        reasons.append("lost requests or clicks (" + ", ".join(f"{k}={v}" for k, v in sorted(lost.items())) + ")")
    if live != Liveness.FAST:
        reasons.append(f"liveness {live}: {live_evidence}")
    for scenario in result.scenarios:
        if scenario.scenario == "generate":
            overlap = max(metrics.overlap_by_pid(scenario.records, pipeline=True).values(), default=0)
            if overlap > 1:
                reasons.append(f"model access not serialized per worker (overlap {overlap})")
                break
    if has_demo(result) and not any(s.scenario == "mixed" for s in result.scenarios):
        reasons.append("demo not exercised (no mixed scenario)")
    if result.stop_forced:
        reasons.append(FORCED_STOP)
    return reasons


def assess(
    result: ProfileResult, conformance: Conformance | None = None, *, relayed: Conformance | None = None
) -> Assessment:
    """Both verdicts for one profile, and the figures the recommendation compares.

    ``conformance``: its backend's server conformance check in the run (None: not checked); ``relayed``: the
    same behind the disconnect relay, when run (the advice names the workaround when it passes).
    """
    worst = worst_liveness(result) if result.status == Status.OK else None
    live, evidence = (worst.grade, worst.evidence) if worst is not None else (Liveness.UNKNOWN, "")
    hazard = demo_hazard(result) if result.status == Status.OK else None
    reasons = unfit_reasons(result, live, evidence, hazard, server_defect(result, conformance, relayed))
    return Assessment(
        predicted=result.passed,
        fit=not reasons,
        unfit=tuple(reasons),
        hazards=(hazard,) if hazard else (),
        liveness=live,
        liveness_evidence=evidence,
        liveness_scenario=worst.scenario if worst is not None else "",
        makespan=figure(total_makespans(result)) if result.status == Status.OK else None,
        demo_pids=demo_pids(result.scenarios),
        processes=processes(result),
    )
