"""Which profile to deploy for serving one model per worker with its demo.

A candidate must have started, met every expectation, served every request
(demo clicks included: a demo that loses clicks is not usable), kept /health
fast in every burst (liveness), and serialized model access per worker. Among
candidates the one with the smallest total makespan wins.
"""

from __future__ import annotations

from collections.abc import Sequence

from launcher.probe import metrics
from launcher.probe.expectations import HEALTH_FAST_S
from launcher.probe.model import ProfileResult, Recommendation


def rejection(result: ProfileResult) -> str | None:
    """Why ``result`` cannot be recommended, or None if it qualifies."""
    if result.status != "ok":
        return f"status {result.status}" + (f": {result.error}" if result.error else "")
    failed = [v for v in result.verdicts if not v.passed]
    if failed:
        return f"expectation failed: {failed[0].expectation} ({failed[0].observed})"
    for scenario in result.scenarios:
        if scenario.scenario == "timeout":
            continue
        errors = metrics.errors_by_class(scenario.records)
        if errors:
            what = ", ".join(f"{k}={v}" for k, v in sorted(errors.items()))
            return f"{scenario.scenario}: requests failed ({what})"
        p99 = metrics.percentile(metrics.health_latencies(scenario.records), 0.99)
        if p99 > HEALTH_FAST_S:
            return f"{scenario.scenario}: liveness lost (/health p99 {p99 * 1000:.0f} ms)"
        if scenario.scenario == "generate":
            overlap = max(metrics.overlap_by_pid(scenario.records, pipeline=True).values(), default=0)
            if overlap > 1:
                return f"generate: model access not serialized (overlap {overlap})"
    if not any(s.scenario == "mixed" for s in result.scenarios):
        return "demo not exercised (no mixed scenario)"
    return None


def total_makespan(result: ProfileResult) -> float:
    """Sum of the burst makespans, the timeout scenario excluded."""
    return sum(metrics.makespan_s(s.records) for s in result.scenarios if s.scenario != "timeout")


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
    best = min(candidates, key=total_makespan)
    for other in candidates:
        if other is not best:
            rejected[other.name] = (
                f"qualified, but slower: total makespan {total_makespan(other):.2f}s vs {total_makespan(best):.2f}s"
            )
    return Recommendation(
        profile=best.profile,
        source=best.source,
        ready_seconds=best.ready_seconds,
        why=(
            f"every expectation held, no request or demo click failed, /health stayed under "
            f"{HEALTH_FAST_S * 1000:.0f} ms, generations serialized per worker, and the smallest total makespan "
            f"({total_makespan(best):.2f}s) of {len(candidates)} qualifying profile(s)"
        ),
        rejected=rejected,
    )
