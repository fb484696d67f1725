"""Judging a run as a whole: the claims and the recommendation, once, from the profiles' results.

The probe calls :func:`judge` at the end of a run and stores the outcome in the
result; renderers only render it. ``launch report --profiles`` narrows a saved
run with :func:`select_profiles`, which judges the kept profiles again here.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Sequence

from launcher.errors import ConfigError
from launcher.probe.claims import judge_claims
from launcher.probe.model import Claim, ProbeRun, ProfileResult, Recommendation
from launcher.probe.recommend import narrow_load, recommend


def judge(profiles: Sequence[ProfileResult], *, cores: int) -> tuple[tuple[Claim, ...], Recommendation | None]:
    """The recommendation over ``profiles``, then the claims (claim 10 is judged against that recommendation)."""
    recommendation = recommend(profiles)
    return tuple(judge_claims(profiles, cores=cores, recommendation=recommendation)), recommendation


def select_names(names: Sequence[str], spec: str) -> set[str]:
    """The ``names`` that ``spec`` names: comma-separated names or globs (fnmatch).

    :class:`ConfigError` names a part that matches none of them.
    """
    keep: set[str] = set()
    for part in (part.strip() for part in spec.split(",")):
        if not part:
            continue
        glob = any(ch in part for ch in "*?[")
        matches = [n for n in names if (fnmatch.fnmatchcase(n, part) if glob else n == part)]
        if not matches:
            known = ", ".join(names) or "none"
            raise ConfigError(f"no profile in the result matches {part!r} (it has: {known})")
        keep.update(matches)
    if not keep:
        raise ConfigError(f"no profile named in {spec!r}")
    return keep


def select_profiles(run: ProbeRun, spec: str | None) -> ProbeRun:
    """The run narrowed to the profiles ``spec`` names (:func:`select_names`), in file order.

    The claims and the recommendation are judged again over the profiles
    kept, so that every part of the report speaks of the same profiles.
    :class:`ConfigError` names a part that matches no profile of the run.
    """
    if not spec:
        return run
    keep = select_names([p.name for p in run.profiles], spec)
    profiles = tuple(p for p in run.profiles if p.name in keep)
    cores = run.machine.get("cores")
    # The reader checked each profile like a profiles file's: judging needs nothing more.
    known = cores if isinstance(cores, int) and cores > 0 else 1
    claims, recommendation = judge(profiles, cores=known)
    return dataclasses.replace(
        run,
        profiles=profiles,
        claims=tuple(claims),
        recommendation=recommendation,
        load=narrow_load(run.load, keep, cores=known),
    )
