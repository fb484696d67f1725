"""Comparing two runs of one kind: whether they can be compared at all, then every verdict and figure.

The rules, in the order the output gives them (``docs/compare.md`` states them too):

1. **Comparable?** Both files are results of the same command and of schema
   versions this launch reads; they measured the same work (the options listed
   in :data:`PROBE_OPTIONS`, :data:`CAPACITY_OPTIONS`, and per route the burst
   size N), on the same machine (:data:`MACHINE_KEYS`, where both files record
   them). Otherwise :class:`NotComparableError`, one line, exit 2; a different
   machine is compared anyway with ``allow_different_machine``, and marked.
2. **Verdicts**, matched by profile name and scenario or route label, each
   change a regression or an improvement: a profile that no longer starts;
   as predicted -> not; fit -> UNFIT; liveness fast -> degraded -> blocked; a
   route's class (in :data:`launcher.probe.routes.CLASSES`' order of
   severity); a claim's verdict; the recommendation; for capacity, a knee
   found -> none and "carries the target rate".
3. **Figures**: a makespan (per scenario or route, and a profile's total) or a
   knee changed only when outside the noise the runs measured
   (:func:`launcher.probe.metrics.within_noise`, the recommendation's tie rule).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from launcher.capacity.model import CapacityRun, ProfileCapacity
from launcher.compare.load import Loaded
from launcher.compare.model import (
    Change,
    Comparison,
    Direction,
    FigureChange,
    NotComparableError,
    ResultKind,
    judge_figure,
)
from launcher.probe.appprobe import AppProbeRun, AppProfileResult
from launcher.probe.assess import UNJUDGED_SCENARIOS, figure
from launcher.probe.judge import judge
from launcher.probe.metrics import makespan_s
from launcher.probe.model import (
    Claim,
    ClaimVerdict,
    Figure,
    Liveness,
    LoadDecision,
    ProbeRun,
    ProfileResult,
    Status,
)
from launcher.probe.routes import CLASSES

MACHINE_KEYS: tuple[str, ...] = ("cores", "cpu_count", "cpu_model", "gpu")
"""What tells two machines apart, where both files record it: the cores the run could use, the CPU, the GPU.
Python and package versions are not the machine: a change of them is what a comparison is for (noted)."""

PROBE_OPTIONS: tuple[str, ...] = ("requests", "seconds", "cpu_seconds", "steps", "concurrency_limit")
"""Options of ``launch probe`` that decide the work of a burst: they must be equal. The scenarios may differ
(those of one run only are listed), and so may the repeats (they only narrow the spread)."""

CAPACITY_OPTIONS: tuple[str, ...] = ("app", "route", "p99_target_s", "step_seconds", "target_rate")
"""Options of ``launch capacity`` that decide what a knee means: they must be equal."""

LIVENESS_ORDER: tuple[Liveness, ...] = (Liveness.FAST, Liveness.DEGRADED, Liveness.BLOCKED)
"""Best first; ``unknown`` (not polled) is not compared."""

KNEE_RULE = (
    "a knee's spread is its bracket: from the highest rate that met the target to the lowest that missed "
    "(none when every rate met it)"
)


def _worse(order: Sequence[Any], base: Any, new: Any) -> Direction:
    return Direction.REGRESSION if order.index(new) > order.index(base) else Direction.IMPROVEMENT


def _flag(profile: str, subject: str, base: bool, new: bool, *, yes: str, no: str, why: str = "") -> list[Change]:
    """A yes/no verdict where yes is good."""
    if base == new:
        return []
    return [
        Change(
            direction=Direction.REGRESSION if base else Direction.IMPROVEMENT,
            profile=profile,
            subject=subject,
            base=yes if base else no,
            new=yes if new else no,
            why=why if base else "",
        )
    ]


def machine_differences(machine_a: dict[str, Any], machine_b: dict[str, Any]) -> list[str]:
    """The differences of :data:`MACHINE_KEYS` between two runs' machines (``key A != B``), where both record it."""
    return [
        f"{key} {machine_a[key]!r} != {machine_b[key]!r}"
        for key in MACHINE_KEYS
        if machine_a.get(key) is not None and machine_b.get(key) is not None and machine_a[key] != machine_b[key]
    ]


def _version_notes(machine_a: dict[str, Any], machine_b: dict[str, Any]) -> list[str]:
    notes = []
    if machine_a.get("python") and machine_b.get("python") and machine_a["python"] != machine_b["python"]:
        notes.append(f"Python {machine_a['python']} -> {machine_b['python']}")
    va, vb = machine_a.get("versions") or {}, machine_b.get("versions") or {}
    notes += [f"{name} {va[name]} -> {vb[name]}" for name in va if name in vb and va[name] != vb[name]]
    return notes


def _options_differ(keys: Sequence[str], a: dict[str, Any], b: dict[str, Any]) -> str | None:
    for key in keys:
        if key in a and key in b and a[key] != b[key]:
            return f"{key} {a[key]!r} != {b[key]!r}"
    return None


def _matched(names_a: Sequence[str], names_b: Sequence[str]) -> tuple[list[str], list[str], list[str]]:
    """(in both, in the base's order; only in the base; only in the new one)."""
    common = [n for n in names_a if n in names_b]
    return common, [n for n in names_a if n not in names_b], [n for n in names_b if n not in names_a]


# --- the reference service ------------------------------------------------------


def scenario_figure(result: ProfileResult, scenario: str) -> Figure | None:
    """A scenario's burst makespan over its repeats; None when the profile did not run it."""
    values = [makespan_s(s.records) for s in result.scenarios if s.scenario == scenario]
    return figure(values) if values else None


def _claims(base: Sequence[Claim], new: Sequence[Claim]) -> list[Change]:
    changes = []
    by_number = {c.number: c for c in new}
    for claim in base:
        other = by_number.get(claim.number)
        if other is None or other.verdict == claim.verdict:
            continue
        untested = ClaimVerdict.UNTESTED in (claim.verdict, other.verdict)
        changes.append(
            Change(
                # A judged claim that flips means a set-up no longer behaves as it did; one that only one run
                # could test (its profiles or scenarios) says nothing about behaviour.
                direction=Direction.CHANGED if untested else Direction.REGRESSION,
                profile="",
                subject=f"claim {claim.number}",
                base=str(claim.verdict),
                new=str(other.verdict),
                why=other.summary or other.evidence,
            )
        )
    return changes


def _recommendation(base: str | None, new: str | None, new_rejected: dict[str, str]) -> list[Change]:
    if base == new:
        return []
    if base is None:
        return [
            Change(direction=Direction.IMPROVEMENT, profile="", subject="recommendation", base="none", new=new or "")
        ]
    if new is None:
        why = new_rejected.get(base, "no profile qualifies")
        return [
            Change(direction=Direction.REGRESSION, profile="", subject="recommendation", base=base, new="none", why=why)
        ]
    why = new_rejected.get(base, "")
    # The old winner lost on figures (slower, or a tie-break): a change, not a regression of a verdict.
    lost_on_figures = not why or why.startswith(("fit, but slower", "tie with", "tie on"))
    return [
        Change(
            direction=Direction.CHANGED if lost_on_figures else Direction.REGRESSION,
            profile="",
            subject="recommendation",
            base=base,
            new=new,
            why=f"{base}: {why}" if why else "",
        )
    ]


def _load(base: LoadDecision | None, new: LoadDecision | None, notes: list[str]) -> list[Change]:
    """The load checks (``--target-rate``) of two runs: who carries the target, and the recommendation against it."""
    if base is None and new is None:
        return []
    if base is None or new is None or (base.rate, base.route, base.p99_s) != (new.rate, new.route, new.p99_s):
        goal = [f"{d.rate:g}/s of {d.route} at p99 {d.p99_s:g} s" if d else "none" for d in (base, new)]
        notes.append(f"the load checks are not compared: their targets differ ({goal[0]} against {goal[1]})")
        return []
    changes: list[Change] = []
    checked = {c.profile: c for c in new.checks}
    target = f"{base.rate:g}/s"
    for check in base.checks:
        other = checked.get(check.profile)
        if other is not None:
            changes += _flag(
                check.profile, "carries the target", check.carried, other.carried, yes=f"carries {target}",
                no=f"does not carry {target}", why=other.why,
            )  # fmt: skip
    if base.chosen != new.chosen:
        # None carrying it any more is a regression; one now carrying it, an improvement; another one, a change.
        if new.chosen is None:
            direction = Direction.REGRESSION
        elif base.chosen is None:
            direction = Direction.IMPROVEMENT
        else:
            direction = Direction.CHANGED
        changes.append(
            Change(
                direction=direction,
                profile="",
                subject=f"recommendation for {target}",
                base=base.chosen or "none",
                new=new.chosen or "none",
                why=new.why if new.chosen is None else "",
            )
        )
    return changes


def _probe_profile(
    a: ProfileResult, b: ProfileResult, scenarios: Sequence[str]
) -> tuple[list[Change], list[FigureChange]]:
    name = a.name
    if a.status != b.status and Status.OK in (a.status, b.status):
        return [
            Change(
                direction=Direction.REGRESSION if a.status == Status.OK else Direction.IMPROVEMENT,
                profile=name,
                subject="status",
                base=str(a.status),
                new=str(b.status),
                why=b.error or "",
            )
        ], []
    if a.status != Status.OK or b.status != Status.OK:
        return [], []
    changes: list[Change] = []
    failed = [v for v in b.verdicts if not v.passed]
    why = f"{failed[0].scenario}: {failed[0].expectation} ({failed[0].observed})" if failed else ""
    changes += _flag(name, "predicted", a.passed, b.passed, yes="as predicted", no="NOT as predicted", why=why)
    unfit = b.assessment.unfit[0] if b.assessment is not None and b.assessment.unfit else ""
    changes += _flag(name, "fit", a.fit, b.fit, yes="FIT", no="UNFIT", why=unfit)
    la = a.assessment.liveness if a.assessment else Liveness.UNKNOWN
    lb = b.assessment.liveness if b.assessment else Liveness.UNKNOWN
    if la != lb and la in LIVENESS_ORDER and lb in LIVENESS_ORDER:
        evidence = b.assessment.liveness_evidence if b.assessment else ""
        changes.append(
            Change(
                direction=_worse(LIVENESS_ORDER, la, lb),
                profile=name,
                subject="liveness",
                base=la,
                new=lb,
                why=evidence,
            )
        )
    figures: list[FigureChange] = []
    fa = a.assessment.makespan if a.assessment else None
    fb = b.assessment.makespan if b.assessment else None
    if fa is not None and fb is not None and fa.samples and fb.samples:
        figures.append(judge_figure(name, "total makespan", "s", fa, fb))
    for scenario in scenarios:
        if scenario in UNJUDGED_SCENARIOS:
            continue
        sa, sb = scenario_figure(a, scenario), scenario_figure(b, scenario)
        if sa is not None and sb is not None:
            figures.append(judge_figure(name, f"{scenario} makespan", "s", sa, sb))
    return changes, figures


def _scenarios_of(run: ProbeRun) -> list[str]:
    """The scenarios a run asked for (its options), else those its profiles ran, in order."""
    ran = [s.scenario for p in run.profiles for s in p.scenarios]
    return list(dict.fromkeys(run.options.get("scenarios") or ran))


def compare_probe(base: Loaded, new: Loaded, *, notes: list[str]) -> Comparison:
    """Two ``launch probe`` runs of the reference service."""
    a, b = base.run, new.run
    assert isinstance(a, ProbeRun) and isinstance(b, ProbeRun)
    differs = _options_differ(PROBE_OPTIONS, a.options, b.options)
    if differs:
        raise NotComparableError(f"the runs measured different work: option {differs}")
    common, only_a, only_b = _matched([p.name for p in a.profiles], [p.name for p in b.profiles])
    scenarios, s_only_a, s_only_b = _matched(_scenarios_of(a), _scenarios_of(b))
    claims_a, rec_a = a.claims, a.recommendation
    claims_b, rec_b = b.claims, b.recommendation
    if only_a or only_b or s_only_a or s_only_b:
        # The claims and the recommendation depend on which profiles and scenarios ran: judge both runs
        # again over what they share, so that a narrower run is not read as a regression.
        keep_a = tuple(p for p in a.profiles if p.name in common)
        keep_b = tuple(p for p in b.profiles if p.name in common)
        claims_a, rec_a = judge(keep_a, cores=int(a.machine.get("cores") or 1))
        claims_b, rec_b = judge(keep_b, cores=int(b.machine.get("cores") or 1))
        notes.append(
            "the runs probed different profiles or scenarios: claims and recommendation judged again over the "
            "shared profiles"
        )
    by_name = {p.name: p for p in b.profiles}
    changes: list[Change] = []
    figures: list[FigureChange] = []
    for result in a.profiles:
        if result.name in by_name:
            c, f = _probe_profile(result, by_name[result.name], scenarios)
            changes += c
            figures += f
    changes += _claims(claims_a, claims_b)
    changes += _recommendation(
        rec_a.profile.name if rec_a else None, rec_b.profile.name if rec_b else None, rec_b.rejected if rec_b else {}
    )
    changes += _load(a.load, b.load, notes)
    return Comparison(
        kind=ResultKind.PROBE,
        base=base.path,
        new=new.path,
        changes=tuple(changes),
        figures=tuple(figures),
        only_in_base=(*only_a, *(f"scenario {s}" for s in s_only_a)),
        only_in_new=(*only_b, *(f"scenario {s}" for s in s_only_b)),
        profiles=tuple(common),
        notes=tuple(notes),
    )


# --- the user's app -----------------------------------------------------------------


def _app_profile(
    a: AppProfileResult, b: AppProfileResult, notes: list[str]
) -> tuple[list[Change], list[FigureChange], list[str], list[str]]:
    name = a.profile
    routes_b = {r.route: r for r in b.routes}
    _, only_a, only_b = _matched([r.route for r in a.routes], [r.route for r in b.routes])
    changes: list[Change] = []
    figures: list[FigureChange] = []
    for route in a.routes:
        other = routes_b.get(route.route)
        if other is None:
            continue
        if route.n and other.n and route.n != other.n:
            raise NotComparableError(
                f"the runs measured different work: route {route.route} under {name}: n {route.n} != {other.n}"
            )
        if route.request != other.request:
            notes.append(f"route {route.route}: request {route.request!r} -> {other.request!r}")
        if route.route_class != other.route_class:
            why = other.advice
            if other.blocks_event_loop:
                why = f"{other.longest_stall_ms:.0f} ms stall; {why}"
            changes.append(
                Change(
                    direction=_worse(tuple(reversed(CLASSES)), route.route_class, other.route_class),
                    profile=name,
                    subject=f"route {route.route}",
                    base=route.route_class,
                    new=other.route_class,
                    why=why,
                )
            )
        figures.append(judge_figure(name, f"route {route.route} makespan", "s", route.figure, other.figure))
    changes += _flag(name, "stop", not a.stop_forced, not b.stop_forced, yes="stopped cleanly", no="needed SIGKILL")
    return changes, figures, [f"{name}: route {r}" for r in only_a], [f"{name}: route {r}" for r in only_b]


def compare_app(base: Loaded, new: Loaded, *, notes: list[str]) -> Comparison:
    """Two ``launch probe --app`` runs."""
    a, b = base.run, new.run
    assert isinstance(a, AppProbeRun) and isinstance(b, AppProbeRun)
    for loaded in (base, new):
        if loaded.version == 0:
            notes.append(
                f"{loaded.path} has no schema header (written before launch compare): its machine and burst sizes "
                "are not recorded, so they were not checked"
            )
    if a.app != b.app:
        notes.append(f"app {a.app} -> {b.app}")
    common, only_a, only_b = _matched([p.profile for p in a.profiles], [p.profile for p in b.profiles])
    by_name = {p.profile: p for p in b.profiles}
    changes: list[Change] = []
    figures: list[FigureChange] = []
    routes_only_a: list[str] = []
    routes_only_b: list[str] = []
    for result in a.profiles:
        other = by_name.get(result.profile)
        if other is None:
            continue
        c, f, ra, rb = _app_profile(result, other, notes)
        changes += c
        figures += f
        routes_only_a += ra
        routes_only_b += rb
    changes += _recommendation(a.recommendation.profile, b.recommendation.profile, b.recommendation.rejected)
    changes += _load(a.load, b.load, notes)
    return Comparison(
        kind=ResultKind.APP,
        base=base.path,
        new=new.path,
        changes=tuple(changes),
        figures=tuple(figures),
        only_in_base=(*only_a, *routes_only_a),
        only_in_new=(*only_b, *routes_only_b),
        profiles=tuple(common),
        notes=tuple(dict.fromkeys(notes)),
    )


# --- capacity ---------------------------------------------------------------------------


def knee_figure(profile: ProfileCapacity) -> Figure | None:
    """The knee with its bracket as the spread (see :data:`KNEE_RULE`); None without a knee."""
    if profile.knee is None:
        return None
    misses = [s.rate for s in profile.steps if not s.passed and s.rate > profile.knee]
    high = min(misses, default=profile.knee)
    return Figure(median=profile.knee, low=profile.knee, high=high, samples=1)


def _carries(profile: ProfileCapacity, target_rate: float | None) -> bool | None:
    if target_rate is None:
        return None
    return profile.knee is not None and profile.knee >= target_rate


def compare_capacity(base: Loaded, new: Loaded, *, notes: list[str]) -> Comparison:
    """Two ``launch capacity`` runs."""
    a, b = base.run, new.run
    assert isinstance(a, CapacityRun) and isinstance(b, CapacityRun)
    differs = _options_differ(CAPACITY_OPTIONS, a.options, b.options)
    if differs:
        raise NotComparableError(f"the sweeps measured different things: option {differs}")
    target_rate = a.options.get("target_rate")
    common, only_a, only_b = _matched([p.name for p in a.profiles], [p.name for p in b.profiles])
    by_name = {p.name: p for p in b.profiles}
    changes: list[Change] = []
    figures: list[FigureChange] = []
    for pa in a.profiles:
        pb = by_name.get(pa.name)
        if pb is None:
            continue
        if pa.status != pb.status and Status.OK in (pa.status, pb.status):
            changes.append(
                Change(
                    direction=Direction.REGRESSION if pa.status == Status.OK else Direction.IMPROVEMENT,
                    profile=pa.name,
                    subject="status",
                    base=str(pa.status),
                    new=str(pb.status),
                    why=pb.error or "",
                )
            )
            continue
        ka, kb = knee_figure(pa), knee_figure(pb)
        changes += _flag(
            pa.name,
            "knee",
            ka is not None,
            kb is not None,
            yes="found",
            no="none (no rate met the target)",
        )
        if ka is not None and kb is not None:
            figures.append(judge_figure(pa.name, "knee", "/s", ka, kb, higher_is_better=True))
        ca, cb = _carries(pa, target_rate), _carries(pb, target_rate)
        if ca is not None and cb is not None:
            changes += _flag(
                pa.name, "carries the target", ca, cb, yes=f"carries {target_rate:g}/s", no=f"below {target_rate:g}/s"
            )
    sa, sb = a.sizing, b.sizing
    if sa is not None and sb is not None:
        changes += _flag(
            "", "sizing: this machine has the cores", sa.fits_cores, sb.fits_cores, yes="yes", no="no", why=sb.text
        )
        if sa.workers_needed != sb.workers_needed:
            changes.append(
                Change(
                    direction=Direction.REGRESSION if sb.workers_needed > sa.workers_needed else Direction.IMPROVEMENT,
                    profile="",
                    subject="sizing: workers needed",
                    base=str(sa.workers_needed),
                    new=str(sb.workers_needed),
                    why=sb.text,
                )
            )
    return Comparison(
        kind=ResultKind.CAPACITY,
        base=base.path,
        new=new.path,
        changes=tuple(changes),
        figures=tuple(figures),
        only_in_base=tuple(only_a),
        only_in_new=tuple(only_b),
        profiles=tuple(common),
        notes=tuple(notes),
        figure_rules={"knee": KNEE_RULE},
    )


def compare(base: Loaded, new: Loaded, *, allow_different_machine: bool = False) -> Comparison:
    """Compare two loaded runs of one kind (:func:`launcher.compare.load.read_pair`); :class:`NotComparableError`."""
    machine_a = getattr(base.run, "machine", {}) or {}
    machine_b = getattr(new.run, "machine", {}) or {}
    notes: list[str] = []
    different = machine_differences(machine_a, machine_b)
    if different and not allow_different_machine:
        raise NotComparableError(
            f"different machines ({'; '.join(different)}); --allow-different-machine compares anyway"
        )
    if different:
        notes.append(f"DIFFERENT MACHINES, compared anyway (--allow-different-machine): {'; '.join(different)}")
    versions = _version_notes(machine_a, machine_b)
    if versions:
        notes.append("versions changed: " + ", ".join(versions))
    for loaded in (base, new):
        complete = getattr(loaded.run, "complete", True)
        if not complete:
            notes.append(f"{loaded.path} is an incomplete run (interrupted): only what it measured is compared")
    if base.kind == ResultKind.PROBE:
        result = compare_probe(base, new, notes=notes)
    elif base.kind == ResultKind.APP:
        result = compare_app(base, new, notes=notes)
    else:
        result = compare_capacity(base, new, notes=notes)
    return dataclasses.replace(result, different_machine=True) if different else result
