"""Measure 5: the probe matrix's wall time against the work it cannot avoid.

Unavoidable: every profile's start-to-ready time (``ProfileResult.ready_seconds``)
plus every burst's duration (``ScenarioResult.finished_ns - started_ns``).
The rest is placed on a timeline rebuilt from the runner's progress events
(each stamped on arrival): CPU calibration, process set-up before the child
starts, settle waits before a burst, analysis after it, stopping, and the
claims at the end. Inside the bursts, the lead-in before the first request
(0.05 s for API bursts; 1 s + 0.02 s per user for demo clients to connect)
and the drain after the last answer are shown too.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The runner imports these lazily, at the end of a run: imported here, the
# whole probe comes from one snapshot of the sources, even when they are
# being edited during a long run.
import launcher.probe.claims
import launcher.probe.recommend  # noqa: F401
from bench.common import (
    BASELINE_COMMIT,
    REPO,
    TIMES,
    MeasureResult,
    alternate,
    baseline_tree,
    judged,
    paired_ratio,
    python,
    tree_env,
)
from launcher.probe.model import ProbeRun
from launcher.probe.runner import ProgressEvent, run_probe
from launcher.probe.scenarios import ProbeOptions, ProfileTarget
from profiles import builtin_profiles

MEASURE = "5 matrix"
TARGET = 1.25
QUICK_PROFILES = ("uvicorn-1-sync", "uvicorn-1-async", "uvicorn-1-offload")
QUICK_SCENARIOS = ("sleep", "cpu", "liveness")


def _ns(t: float) -> int:
    return int(t * 1e9)


def breakdown(run: ProbeRun, events: list[tuple[float, ProgressEvent]], wall: tuple[float, float]) -> dict[str, Any]:
    """Where the wall time went, in seconds."""
    t_start, t_end = wall
    out: dict[str, float] = {
        "calibration_and_setup": 0.0,
        "start_overhead": 0.0,
        "ready": 0.0,
        "settle": 0.0,
        "bursts": 0.0,
        "burst_lead_in": 0.0,
        "burst_drain": 0.0,
        "analysis": 0.0,
        "stop": 0.0,
        "stop_child": 0.0,
        "between_profiles": 0.0,
        "claims_and_report": 0.0,
    }
    if events:
        out["calibration_and_setup"] = events[0][0] - t_start
        out["claims_and_report"] = t_end - events[-1][0]
    by_profile: dict[str, list[tuple[float, ProgressEvent]]] = {}
    for at, event in events:
        by_profile.setdefault(event.profile, []).append((at, event))
    previous_done: float | None = None
    for result in run.profiles:
        timeline = by_profile.get(result.name, [])
        if not timeline:
            continue
        if previous_done is not None:
            out["between_profiles"] += timeline[0][0] - previous_done
        phases = {e.phase: at for at, e in timeline}
        previous_done = phases.get("done", timeline[-1][0])
        ready = result.ready_seconds or 0.0
        out["ready"] += ready
        first_after_start = next((at for at, e in timeline if e.phase != "starting"), None)
        if "starting" in phases and first_after_start is not None:
            out["start_overhead"] += first_after_start - phases["starting"] - ready
        scenario_events = [(at, e) for at, e in timeline if e.phase in {s.scenario for s in result.scenarios}]
        for scenario, (at, _event) in zip(result.scenarios, scenario_events, strict=False):
            out["settle"] += scenario.started_ns / 1e9 - at
            out["bursts"] += (scenario.finished_ns - scenario.started_ns) / 1e9
            sent = [r.sent_ns for r in scenario.records if r.kind != "health"]
            received = [r.received_ns for r in scenario.records if r.kind != "health"]
            if sent:
                out["burst_lead_in"] += (min(sent) - scenario.started_ns) / 1e9
                out["burst_drain"] += (scenario.finished_ns - max(received)) / 1e9
        # Analysis: from a burst's end to the next event (the next burst's
        # announcement, or "stopping").
        later = [at for at, e in timeline if e.phase not in ("starting",)]
        for scenario in result.scenarios:
            end = scenario.finished_ns / 1e9
            following = [at for at in later if at >= end]
            if following:
                out["analysis"] += min(following) - end
        if "stopping" in phases:
            out["stop"] += phases.get("done", phases["stopping"]) - phases["stopping"]
        out["stop_child"] += result.stop_seconds or 0.0
    return out


def run(*, quick: bool, say: Callable[[str], None] = print) -> MeasureResult:
    result = MeasureResult()
    catalog = builtin_profiles()
    names = QUICK_PROFILES if quick else tuple(catalog)
    options = ProbeOptions(scenarios=QUICK_SCENARIOS) if quick else ProbeOptions()
    # --quick: the sleep and CPU bursts need no model, and a worker without
    # one starts in seconds; the full run probes the built-ins as they are.
    targets = [ProfileTarget(profile=catalog[name].replace(model="none") if quick else catalog[name]) for name in names]
    events: list[tuple[float, ProgressEvent]] = []

    def progress(event: ProgressEvent) -> None:
        events.append((time.monotonic(), event))
        if event.phase in ("starting", "done", "did_not_start"):
            say(f"  [{event.index}/{event.total}] {event.profile}: {event.phase} {event.detail}".rstrip())

    started = time.monotonic()
    probe_run = run_probe(targets, options, progress=progress)
    finished = time.monotonic()
    wall = finished - started
    parts = breakdown(probe_run, events, (started, finished))
    unavoidable = parts["ready"] + parts["bursts"]
    value = wall / unavoidable if unavoidable else None
    overhead = wall - unavoidable
    listed = (
        "calibration_and_setup",
        "start_overhead",
        "settle",
        "analysis",
        "stop",
        "between_profiles",
        "claims_and_report",
    )
    accounted = sum(parts[k] for k in listed)
    where = ", ".join(f"{k} {parts[k]:.2f} s" for k in listed)
    say(
        f"  wall {wall:.1f} s; ready {parts['ready']:.1f} s + bursts {parts['bursts']:.1f} s = {unavoidable:.1f} s; "
        f"overhead {overhead:.1f} s: {where}; unaccounted {overhead - accounted:.1f} s"
    )
    say(
        f"  inside the bursts: lead-in {parts['burst_lead_in']:.1f} s (demo clients connect, t0 offset), "
        f"drain {parts['burst_drain']:.1f} s; stop of the children {parts['stop_child']:.1f} s"
    )
    statuses = {p.name: p.status for p in probe_run.profiles}
    result.figures.append(
        judged(
            MEASURE,
            f"wall time / (ready + bursts), {len(names)} profiles",
            value,
            TIMES,
            at_most=TARGET,
            detail=f"wall {wall:.1f} s vs {parts['ready']:.1f} s ready + {parts['bursts']:.1f} s bursts; overhead: "
            + where
            + f"; inside the bursts: lead-in {parts['burst_lead_in']:.2f} s, drain {parts['burst_drain']:.2f} s",
        )
    )
    result.raw = {
        "profiles": list(names),
        "model": "none" if quick else "as built in (tiny)",
        "scenarios": list(options.scenarios),
        "requests": options.requests,
        "work_seconds": options.seconds,
        "wall_s": wall,
        "unavoidable_s": unavoidable,
        "breakdown_s": parts,
        "unaccounted_s": overhead - accounted,
        "statuses": statuses,
        "probe_passed": probe_run.passed,
        "per_profile": [
            {
                "name": p.name,
                "status": p.status,
                "ready_s": p.ready_seconds,
                "stop_s": p.stop_seconds,
                "bursts_s": {s.scenario: (s.finished_ns - s.started_ns) / 1e9 for s in p.scenarios},
            }
            for p in probe_run.profiles
        ],
    }
    result.seconds = wall
    return result


VERSUS_MEASURE = "5 matrix"
VERSUS_PROFILES = tuple(f"gunicorn-{w}-{m}" for w in (1, 3) for m in ("sync", "async", "offload"))
"""The subset the old-vs-new pair runs by default: the six profiles with a timeout scenario (a full pair of
default runs, 18 profiles each, takes over 20 minutes on 2 cores)."""


def _union_s(spans: list[tuple[int, int]]) -> float:
    """Seconds covered by the union of ``(start_ns, end_ns)`` spans (side-by-side scenarios count once)."""
    total, end = 0, None
    for start, stop in sorted(spans):
        if end is None or start > end:
            total += stop - start
            end = stop
        elif stop > end:
            total += stop - end
            end = stop
    return total / 1e9


def probe_parts(payload: dict[str, Any], wall: float) -> dict[str, float]:
    """Where a saved probe run's wall time went: start, bursts, timeout, stop, overhead (seconds)."""
    profiles = payload.get("profiles", [])
    spans = [(s["started_ns"], s["finished_ns"], s["scenario"]) for p in profiles for s in p.get("scenarios", [])]
    parts = {
        "start": sum(p.get("ready_seconds") or 0.0 for p in profiles),
        "bursts": _union_s([(a, b) for a, b, name in spans if name != "timeout"]),
        "timeout": _union_s([(a, b) for a, b, name in spans if name == "timeout"]),
        "stop": sum(p.get("stop_seconds") or 0.0 for p in profiles),
    }
    parts["overhead"] = wall - sum(parts.values())
    return parts


def probe_once(tree: Path, profiles: tuple[str, ...] | None, out: Path) -> tuple[float, dict[str, Any]]:
    """``launch probe`` (default scenarios and repeats) of ``profiles`` with the code of ``tree``: wall s and JSON.

    ``profiles`` None: that code's own default, every profile it probes unasked.
    """
    argv = [python(), "-m", "launcher", "probe", "--json", str(out), "--quiet"]
    if profiles is not None:
        argv[4:4] = ["--profiles", ",".join(profiles)]
    started = time.monotonic()
    done = subprocess.run(argv, env={**os.environ, **tree_env(tree)}, cwd=tree, capture_output=True, check=False)
    wall = time.monotonic() - started
    if not out.is_file():
        raise RuntimeError(f"probe with {tree} wrote no result (exit {done.returncode}): {done.stderr[-400:]!r}")
    return wall, json.loads(out.read_text())


def run_versus(
    *,
    profiles: tuple[str, ...] | None = VERSUS_PROFILES,
    reps: int = 1,
    keep: Path | None = None,
    say: Callable[[str], None] = print,
) -> MeasureResult:
    """The default probe of ``profiles``, this code vs the baseline commit, alternating; wall time ratio new/old.

    ``profiles`` None: each side's full default run (the old code has no granian or gunicorn-asgi profile,
    so the two runs probe different counts; the per-profile ratio is reported beside the wall ratio).
    ``keep``: a folder to keep each run's probe JSON in.
    """
    result = MeasureResult()
    trees = {"new": REPO, "old": baseline_tree()}
    runs: dict[str, list[dict[str, Any]]] = {"new": [], "old": []}
    with tempfile.TemporaryDirectory(prefix="bench-versus-") as scratch:
        folder = keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        for rep in range(reps):
            for side in alternate(("new", "old"), rep):
                wall, payload = probe_once(trees[side], profiles, folder / f"{side}-{rep}.json")
                parts = probe_parts(payload, wall)
                rec = (payload.get("recommendation") or {}).get("profile", {}).get("name")
                count = len(payload.get("profiles", []))
                runs[side].append({"wall_s": wall, "parts_s": parts, "recommendation": rec, "profiles": count})
                say(
                    f"  {side}: wall {wall:.1f} s = "
                    + ", ".join(f"{k} {v:.1f}" for k, v in parts.items())
                    + f"; recommends {rec}"
                )
    value = paired_ratio([r["wall_s"] for r in runs["new"]], [r["wall_s"] for r in runs["old"]])
    new, old = runs["new"][-1], runs["old"][-1]
    counts = (
        f"{len(profiles)} profiles"
        if profiles is not None
        else f"default runs, {new['profiles']} vs {old['profiles']} profiles"
    )
    if profiles is None:
        per_profile = paired_ratio(
            [r["wall_s"] / max(r["profiles"], 1) for r in runs["new"]],
            [r["wall_s"] / max(r["profiles"], 1) for r in runs["old"]],
        )
        result.figures.append(
            judged(
                VERSUS_MEASURE,
                f"probe wall time per profile, this code / {BASELINE_COMMIT}, default runs",
                per_profile,
                TIMES,
                detail=f"new {new['wall_s'] / max(new['profiles'], 1):.1f} s per profile, "
                f"old {old['wall_s'] / max(old['profiles'], 1):.1f} s",
            )
        )
    result.figures.append(
        judged(
            VERSUS_MEASURE,
            f"probe wall time, this code / {BASELINE_COMMIT}, {counts}",
            value,
            TIMES,
            at_most=1 / 3,
            detail=", ".join(
                f"{side} {r['wall_s']:.0f} s ("
                + ", ".join(f"{k} {v:.0f}" for k, v in r["parts_s"].items())
                + f"; recommends {r['recommendation']})"
                for side, r in (("new", new), ("old", old))
            ),
        )
    )
    result.raw = {"profiles": list(profiles) if profiles is not None else "default", "reps": reps, "runs": runs}
    return result
