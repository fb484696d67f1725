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

from launcher.probe.assess import assess
from launcher.probe.metrics import NOISE_FLOOR_S, TIE_REL, within_noise
from launcher.probe.model import Assessment, LoadCheck, LoadDecision, ProfileResult, Recommendation, Status

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


def makespan(result: ProfileResult) -> float:
    """Median total makespan over the repeats."""
    figure = _assessment(result).makespan
    return figure.median if figure is not None else float("inf")


def ties(a: ProfileResult, b: ProfileResult) -> bool:
    """Whether two candidates' medians are within the measured spread (or :data:`TIE_REL`)."""
    fa, fb = _assessment(a).makespan, _assessment(b).makespan
    if fa is None or fb is None:
        return False
    return within_noise(fa, fb)


def backend_rank(backend: str) -> int:
    """``backend``'s place in :data:`BACKEND_ORDER` (others after it)."""
    return BACKEND_ORDER.index(backend) if backend in BACKEND_ORDER else len(BACKEND_ORDER)


def stable_key(result: ProfileResult) -> tuple[int, int, str]:
    """The tie-break: fewer processes, then the backend order, then the name."""
    return (_assessment(result).processes, backend_rank(result.profile.backend), result.name)


def recommend(results: Sequence[ProfileResult]) -> Recommendation | None:
    """The best qualifying profile, with the reason each other one lost; None if none qualifies."""
    rejected: dict[str, str] = {}
    candidates: list[ProfileResult] = []
    for result in results:
        reason = rejection(result)
        if reason is None:
            candidates.append(result)
        else:
            rejected[result.name] = reason
    if not candidates:
        return None
    fastest = min(candidates, key=lambda r: (makespan(r), stable_key(r)))
    tied = sorted((r for r in candidates if ties(r, fastest)), key=stable_key)
    best = tied[0]
    best_figure = _assessment(best).makespan
    assert best_figure is not None
    for other in candidates:
        if other is best:
            continue
        figure = _assessment(other).makespan
        shown = f"{figure.median:.2f}s (spread {figure.spread:.2f}s)" if figure else "?"
        if other in tied:
            rejected[other.name] = (
                f"tie with {best.name} (total makespan {shown} vs {best_figure.median:.2f}s); "
                f"lost the tie-break: {_assessment(other).processes} process(es), "
                f"backend {other.profile.backend}"
            )
        else:
            rejected[other.name] = f"fit, but slower: total makespan {shown} vs {best_figure.median:.2f}s"
    repeats = best_figure.samples
    rule = (
        f"smallest median total makespan over {repeats} repeat(s) among {len(candidates)} fit profile(s); "
        f"ties within max(spread, {TIE_REL:.0%}, {NOISE_FLOOR_S * 1000:.0f} ms) broken by fewer processes, "
        "then backend order"
    )
    if len(tied) > 1:
        why = (
            f"tie between {', '.join(r.name for r in tied)} (median total makespans "
            f"{', '.join(f'{makespan(r):.2f}s' for r in tied)}); {best.name} runs the fewest processes "
            f"({_assessment(best).processes}) and comes first in the backend order"
        )
    else:
        why = f"fit to serve, and the smallest median total makespan ({best_figure.median:.2f}s)"
    return Recommendation(
        profile=best.profile,
        source=best.source,
        ready_seconds=best.ready_seconds,
        why=why,
        rejected=rejected,
        tied=tuple(r.name for r in tied) if len(tied) > 1 else (),
        rule=rule,
    )


LOAD_RULE = (
    "every fit profile held at the target rate, open loop, the demo clicked meanwhile; among those that carry it, "
    "the simplest: fewer processes, then the backend order, then the name"
)


def load_key(check: LoadCheck) -> tuple[int, int, str]:
    """The load decision's order: fewer processes, then the backend order, then the name (as :func:`stable_key`)."""
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
