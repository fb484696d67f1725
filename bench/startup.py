"""Measure 7: a start of ``launch --profile uvicorn-1-sync``, this code against the code before the speed work.

A (this code) and B (commit :data:`bench.common.BASELINE_COMMIT`, from a git
worktree, same venv and libraries) alternate, one start at a time on the
machine, each timed from ``Popen`` to the first 200 on ``/health`` (polled
every 10 ms). With one uvicorn worker that is readiness: uvicorn answers
only after the app's lifespan loaded the model. The figure is the median of
the per-repetition ratios A / B; the CPU seconds each start used (the whole
process group, read when it answers) are given beside it, since on a shared
machine CPU time drifts less than wall time.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import (
    REPO,
    TIMES,
    MeasureResult,
    alternate,
    baseline_tree,
    cpu_seconds,
    first_200,
    free_port,
    group_pids,
    group_process,
    judged,
    median,
    paired_ratio,
    python,
    tree_env,
)

MEASURE = "7 startup"
PROFILE = "uvicorn-1-sync"
TARGET = 0.6
SIDES = ("new", "old")


def time_start(tree: Path) -> tuple[float, float]:
    """Seconds from Popen to the first 200 on /health, and the CPU seconds the group used by then."""
    port = free_port()
    argv = [python(), "-m", "launcher", "--profile", PROFILE, "--port", str(port)]
    started = time.monotonic()
    with group_process(argv, env=tree_env(tree), cwd=tree) as proc:
        seconds = first_200(proc, port, started=started)
        return seconds, cpu_seconds(group_pids(proc.pid))


def run(*, reps: int, say: Callable[[str], None] = print) -> MeasureResult:
    started = time.monotonic()
    result = MeasureResult()
    trees = {"new": REPO, "old": baseline_tree()}
    wall: dict[str, list[float]] = {side: [] for side in SIDES}
    cpu: dict[str, list[float]] = {side: [] for side in SIDES}
    for rep in range(reps):
        for side in alternate(SIDES, rep):
            try:
                seconds, used = time_start(trees[side])
            except RuntimeError as exc:
                result.notes.append(f"startup {side}: {exc}")
                seconds, used = math.nan, math.nan
            wall[side].append(seconds)
            cpu[side].append(used)
            say(f"  {PROFILE} {side:<4} start-to-ready {seconds:6.2f} s, CPU {used:6.2f} s")
    value = paired_ratio(wall["new"], wall["old"])
    cpu_ratio = paired_ratio(cpu["new"], cpu["old"])
    result.figures += [
        judged(
            MEASURE,
            f"{PROFILE}: start-to-ready, this code / {trees['old'].name.removeprefix('launch-baseline-')}",
            value,
            TIMES,
            at_most=TARGET,
            detail=f"median of {reps} paired ratios; "
            f"medians {median(wall['new']):.2f} s vs {median(wall['old']):.2f} s",
        ),
        judged(
            MEASURE,
            f"{PROFILE}: CPU seconds of a start, this code / baseline",
            cpu_ratio,
            TIMES,
            detail=f"medians {median(cpu['new']):.2f} s vs {median(cpu['old']):.2f} s of CPU (launcher and workers)",
        ),
    ]
    result.raw = {"profile": PROFILE, "reps": reps, "wall_s": wall, "cpu_s": cpu, "baseline": str(trees["old"])}
    result.seconds = time.monotonic() - started
    return result
