"""Which profile to deploy for serving one model per worker with its demo.

The rules, in order (the README states them too):

1. A candidate behaved as predicted (every expectation held: otherwise the
   evidence itself is in doubt) and is *fit to serve*
   (:mod:`launcher.probe.assess`): nothing lost, no demo split over
   processes, liveness ``fast``, model access serialized per worker.
   ``degraded`` and ``blocked`` liveness both disqualify; each rejection
   names its class and figures.
2. Candidates are compared by the median over the repeats of their total
   makespan. Two candidates tie when their medians differ by no more than
   the larger of their measured spreads (max - min over the repeats) and
   :data:`TIE_REL` of the smaller median (and 50 ms): the one noise rule,
   :func:`launcher.probe.metrics.within_noise`.
3. Among the candidates tied with the fastest, the first in a stable order
   wins: fewer server processes (less memory), then the fixed backend order
   :data:`BACKEND_ORDER`, then the name. The output says "tie" and names them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from launcher.probe.assess import assess
from launcher.probe.metrics import NOISE_FLOOR_S, TIE_REL, within_noise
from launcher.probe.model import (
    Assessment,
    Figure,
    LoadCheck,
    LoadDecision,
    ProfileResult,
    Recommendation,
    Status,
)

BACKEND_ORDER: tuple[str, ...] = ("uvicorn", "hypercorn", "gunicorn", "gunicorn-asgi", "granian", "ray")
"""The tie-break's backend order: the simplest deployment first (one process, fewest moving parts)."""


def _assessment(result: ProfileResult) -> Assessment:
    return result.assessment if result.assessment is not None else assess(result)


def rejection(result: ProfileResult) -> str | None:
    """Why ``result`` cannot be recommended, or None if it qualifies."""
    verdict = _assessment(result)
    if not verdict.predicted and result.status == Status.OK:
        failed = [v for v in result.verdicts if not v.passed]
        return f"not as predicted: {failed[0].scenario}: {failed[0].expectation} ({failed[0].observed})"
    if not verdict.fit:
        return verdict.unfit[0]
    return None


def backend_rank(backend: str) -> int:
    """``backend``'s place in :data:`BACKEND_ORDER` (others after it)."""
    return BACKEND_ORDER.index(backend) if backend in BACKEND_ORDER else len(BACKEND_ORDER)


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """One profile as the recommendation sees it, from a reference probe or a user app's probe alike."""

    name: str
    backend: str
    processes: int
    """Server processes it runs: the tie-break's first key (less memory)."""
    makespan: Figure | None
    """Median total makespan over the repeats, with their spread (None: nothing measured)."""
    rejection: str | None
    """Why it cannot be recommended (None: it qualifies)."""


@dataclass(frozen=True, kw_only=True)
class Choice:
    """The one rule's answer: the winner (None: none qualifies), its ties, and why each other one lost."""

    best: str | None
    tied: tuple[str, ...]
    """Every candidate tied with the winner, the winner first (empty when there was no tie)."""
    rejected: dict[str, str]
    why: str
    rule: str


def candidate_key(candidate: Candidate) -> tuple[int, int, str]:
    """The tie-break: fewer processes, then the backend order, then the name."""
    return (candidate.processes, backend_rank(candidate.backend), candidate.name)


def choose(candidates: Sequence[Candidate]) -> Choice:
    """The rules of the module's docstring over any kind of result.

    The fastest qualifying candidate wins; ties (:func:`launcher.probe.metrics.within_noise`) go to the first
    by :func:`candidate_key`.
    """
    rejected = {c.name: c.rejection for c in candidates if c.rejection is not None}
    qualifying = [c for c in candidates if c.rejection is None and c.makespan is not None]
    for c in candidates:
        if c.rejection is None and c.makespan is None:
            rejected[c.name] = "nothing measured"
    if not qualifying:
        return Choice(best=None, tied=(), rejected=rejected, why="no profile qualifies", rule="")

    def figure_of(c: Candidate) -> Figure:
        assert c.makespan is not None
        return c.makespan

    fastest = min(qualifying, key=lambda c: (figure_of(c).median, candidate_key(c)))
    tied = sorted((c for c in qualifying if within_noise(figure_of(c), figure_of(fastest))), key=candidate_key)
    best = tied[0]
    best_figure = figure_of(best)
    for other in qualifying:
        if other is best:
            continue
        figure = figure_of(other)
        shown = f"{figure.median:.2f}s (spread {figure.spread:.2f}s)"
        if other in tied:
            rejected[other.name] = (
                f"tie with {best.name} (total makespan {shown} vs {best_figure.median:.2f}s); "
                f"lost the tie-break: {other.processes} process(es), backend {other.backend}"
            )
        else:
            rejected[other.name] = f"fit, but slower: total makespan {shown} vs {best_figure.median:.2f}s"
    rule = (
        f"smallest median total makespan over {best_figure.samples} repeat(s) among {len(qualifying)} fit "
        f"profile(s); ties within max(spread, {TIE_REL:.0%}, {NOISE_FLOOR_S * 1000:.0f} ms) broken by fewer "
        "processes, then backend order"
    )
    if len(tied) > 1:
        why = (
            f"tie between {', '.join(c.name for c in tied)} (median total makespans "
            f"{', '.join(f'{figure_of(c).median:.2f}s' for c in tied)}); {best.name} runs the fewest processes "
            f"({best.processes}) and comes first in the backend order"
        )
    else:
        why = f"fit to serve, and the smallest median total makespan ({best_figure.median:.2f}s)"
    return Choice(
        best=best.name,
        tied=tuple(c.name for c in tied) if len(tied) > 1 else (),
        rejected=rejected,
        why=why,
        rule=rule,
    )


def candidate(result: ProfileResult) -> Candidate:
    """A reference probe's profile as a :class:`Candidate`."""
    verdict = _assessment(result)
    return Candidate(
        name=result.name,
        backend=result.profile.backend,
        processes=verdict.processes,
        makespan=verdict.makespan,
        rejection=rejection(result),
    )


def recommend(results: Sequence[ProfileResult]) -> Recommendation | None:
    """The best qualifying profile, with the reason each other one lost; None if none qualifies."""
    choice = choose([candidate(r) for r in results])
    if choice.best is None:
        return None
    best = next(r for r in results if r.name == choice.best)
    return Recommendation(
        profile=best.profile,
        source=best.source,
        ready_seconds=best.ready_seconds,
        why=choice.why,
        rejected=choice.rejected,
        tied=choice.tied,
        rule=choice.rule,
    )


LOAD_RULE = (
    "every fit profile held at the target rate, open loop, the demo clicked meanwhile; among those that carry it, "
    "the simplest: fewer processes, then the backend order, then the name"
)


def load_key(check: LoadCheck) -> tuple[int, int, str]:
    """The load decision's order: fewer processes, then the backend order, then the name (as :func:`candidate_key`)."""
    return (check.processes, backend_rank(check.backend), check.profile)


def recommend_for_load(
    checks: Sequence[LoadCheck], *, rate: float, route: str, p99_s: float, cores: int
) -> LoadDecision:
    """The simplest checked profile that carries ``rate``; when none does, the closest one and what it would take.

    ``checks`` are the fit profiles' (:func:`rejection` is None for each): a
    profile that is not fit to serve is never a candidate, whatever it carries.
    """
    carrying = sorted((c for c in checks if c.carried), key=load_key)
    target = f"{rate:g}/s on {route} at p99 <= {p99_s:g} s"
    if carrying:
        best = carrying[0]
        others = f" (of {len(carrying)} that do)" if len(carrying) > 1 else ""
        why = (
            f"{best.profile} carries {target}: {best.why}; the simplest fit profile that carries it{others}: "
            f"{best.processes} process(es), backend {best.backend}"
        )
        return LoadDecision(
            rate=rate, route=route, p99_s=p99_s, checks=tuple(checks), chosen=best.profile, why=why, rule=LOAD_RULE
        )
    if not checks:
        why = f"no profile is fit to serve, so none was held at {target}"
    else:
        with_knee = [c for c in checks if c.knee is not None]
        if not with_knee:
            why = f"no fit profile carries {target}, and none met the p99 target at any rate tried"
        else:
            closest = max(with_knee, key=lambda c: (c.knee or 0.0, [-k for k in load_key(c)[:2]]))
            assert closest.knee is not None
            per_worker = closest.knee / max(1, closest.workers)
            needed = max(1, math.ceil(rate / per_worker - 1e-9))
            cores_note = f", more than this machine's {cores} cores" if needed > cores else ""
            why = (
                f"no fit profile carries {target}; closest: {closest.profile} (knee {closest.knee:g}/s over "
                f"{closest.workers} serving process(es), {per_worker:.3g}/s each). At that rate per process it "
                f"would take about {needed} serving processes: a split profile with workers = {needed} (the demo "
                f"in one process, the API in {needed}: `launch profiles` lists split-*){cores_note}"
            )
    return LoadDecision(rate=rate, route=route, p99_s=p99_s, checks=tuple(checks), chosen=None, why=why, rule=LOAD_RULE)


def narrow_load(decision: LoadDecision | None, keep: set[str], *, cores: int) -> LoadDecision | None:
    """The load decision over the checks of the profiles in ``keep`` only, decided again.

    For ``launch report --profiles``: every part of a narrowed report speaks of the same profiles.
    """
    if decision is None:
        return None
    return recommend_for_load(
        [c for c in decision.checks if c.profile in keep],
        rate=decision.rate,
        route=decision.route,
        p99_s=decision.p99_s,
        cores=cores,
    )
