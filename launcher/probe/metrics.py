"""Figures derived from request records: pure functions, no I/O."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from launcher.probe.model import WORK_KINDS, Figure, Kind, RequestRecord

BLOCK_FLOOR_MS = 50.0
"""A stall or a difference of durations shorter than this is scheduling noise (a busy machine, GC, GIL
hand-offs), not a blocked loop or a slower route."""

OVERLAP_EPSILON_NS = 1_000_000
"""Intervals that merely touch (one ends, the next starts within 1 ms) do not overlap."""


TIE_REL = 0.10
"""Relative slack of the noise rule. Within one run here (machine loaded by other jobs), the per-repeat
total makespan of uvicorn-1-offload moved by about 4 % (0.32 s of 8 s); 10 % leaves room for the
drift between runs, which the spread of two repeats does not see."""

NOISE_FLOOR_S = BLOCK_FLOOR_MS / 1000
"""Durations closer than this are the same: the scheduling noise of a busy machine (GC, GIL hand-offs, a
neighbour's burst), the floor under which the route classes call an event-loop stall noise too. Without it
a route that answers in 8 ms would change by 10 % with one millisecond of jitter."""

NOISE_RULE = (
    f"medians within max(either run's spread over its repeats, {TIE_REL:.0%} of the smaller median, "
    f"{BLOCK_FLOOR_MS:.0f} ms for a duration) are the same within noise"
)
"""The noise rule in words, as the recommendation's tie and ``launch compare`` state it."""


def noise_slack(a: Figure, b: Figure, *, duration: bool = True) -> float:
    """How far two figures' medians may differ and still be the same within noise (see :func:`within_noise`)."""
    return max(a.spread, b.spread, TIE_REL * min(a.median, b.median), NOISE_FLOOR_S if duration else 0.0)


def within_noise(a: Figure, b: Figure, *, duration: bool = True) -> bool:
    """The one noise rule: two figures are the same when their medians differ by no more than :func:`noise_slack`.

    The noise is what the runs themselves measured: the larger of the two spreads (max - min over each
    one's repeats), and never less than :data:`TIE_REL` of the smaller median, for the drift between
    runs that a spread of a few repeats does not see, nor, for a duration in seconds, than
    :data:`NOISE_FLOOR_S`. The recommendation's tie (two profiles of one run) and ``launch compare``
    (one figure of two runs) both use it; a rate (a capacity knee) is no duration (``duration=False``).
    """
    return abs(a.median - b.median) <= noise_slack(a, b, duration=duration)


def work_records(records: Iterable[RequestRecord], *, kinds: tuple[Kind, ...] = WORK_KINDS) -> list[RequestRecord]:
    """Requests of ``kinds`` whose work interval the server reported."""
    return [r for r in records if r.kind in kinds and r.has_work_interval]


def interval(record: RequestRecord, *, pipeline: bool = False) -> tuple[int, int]:
    """The record's work interval (or its pipeline call's, for generate)."""
    if pipeline and record.pipeline_start_ns is not None and record.pipeline_end_ns is not None:
        return record.pipeline_start_ns, record.pipeline_end_ns
    assert record.start_ns is not None and record.end_ns is not None
    return record.start_ns, record.end_ns


def max_overlap(intervals: Iterable[tuple[int, int]]) -> int:
    """The most intervals running at one instant."""
    events: list[tuple[int, int]] = []
    for start, end in intervals:
        events.append((start, 1))
        # Shrink the end so that back-to-back intervals do not count as overlapping,
        # but never to before its own start: an interval shorter than the epsilon
        # still counts (its end sorted before its start would count -1).
        events.append((max(start + 1, end - OVERLAP_EPSILON_NS), -1))
    events.sort(key=lambda e: (e[0], e[1]))
    best = current = 0
    for _, delta in events:
        current += delta
        best = max(best, current)
    return best


def covered_ns(intervals: Iterable[tuple[int, int]]) -> int:
    """The length of the union of ``intervals`` (ns).

    A worker running three requests at once on three threads is busy once, not three times.
    """
    covered = 0
    current: tuple[int, int] | None = None
    for a, b in sorted((a, b) for a, b in intervals if b > a):
        if current is None or a > current[1]:
            if current is not None:
                covered += current[1] - current[0]
            current = (a, b)
        else:
            current = (current[0], max(current[1], b))
    if current is not None:
        covered += current[1] - current[0]
    return covered


def by_pid(records: Iterable[RequestRecord]) -> dict[int, list[RequestRecord]]:
    """Records grouped by the worker pid that served them."""
    groups: dict[int, list[RequestRecord]] = defaultdict(list)
    for record in records:
        if record.pid is not None:
            groups[record.pid].append(record)
    return dict(groups)


def overlap_by_pid(records: Iterable[RequestRecord], *, pipeline: bool = False) -> dict[int, int]:
    """Most work intervals running at once within each pid."""
    return {
        pid: max_overlap(interval(r, pipeline=pipeline) for r in group)
        for pid, group in by_pid(work_records(records)).items()
    }


def counts_by_pid(records: Iterable[RequestRecord]) -> dict[int, int]:
    """How many work requests each pid served."""
    return dict(Counter(r.pid for r in work_records(records) if r.pid is not None))


def makespan_s(records: Sequence[RequestRecord]) -> float:
    """From the first work request sent to the last one answered (failed ones included)."""
    work = [r for r in records if r.kind in WORK_KINDS]
    if not work:
        return 0.0
    return (max(r.received_ns for r in work) - min(r.sent_ns for r in work)) / 1e9


def span_s(records: Sequence[RequestRecord]) -> float:
    """From the first work start to the last work end, server side."""
    work = work_records(records)
    if not work:
        return 0.0
    return (max(interval(r)[1] for r in work) - min(interval(r)[0] for r in work)) / 1e9


def percentile(values: Sequence[float], p: float) -> float | None:
    """The ``p``-th percentile (``p`` in 0..100, as in "p99") of ``values`` by the nearest rank; None for no values.

    The one percentile of the project (the probe, capacity, the benchmarks). Nearest rank: always one
    of the values, never an interpolation between two. None, not 0, when there is nothing to rank:
    no figure is not a fast one.
    """
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def health_latency(record: RequestRecord) -> float:
    """How long a health check waited for the server to answer it (s).

    Measured to the moment the server's handler ran (``end_ns``, same clock)
    when known: that is what a blocked event loop delays. The client's own
    time to read the answer -- it shares this machine's cores with the
    server's work -- is not the server's liveness.
    """
    answered = record.end_ns if record.end_ns is not None else record.received_ns
    return max(0, answered - record.sent_ns) / 1e9


def health_latencies(records: Iterable[RequestRecord]) -> list[float]:
    """Latencies (s) of the health checks that were answered."""
    return [health_latency(r) for r in records if r.kind == Kind.HEALTH and r.ok]


def errors_by_class(records: Iterable[RequestRecord], *, kinds: tuple[Kind, ...] = WORK_KINDS) -> dict[str, int]:
    """Failed requests of ``kinds`` counted by error class."""
    return dict(Counter(r.error or f"http_{r.status}" for r in records if r.kind in kinds and not r.ok))


@dataclass(frozen=True, kw_only=True)
class BurstSummary:
    """The figures the reports show for one burst (derived, never stored: the records are)."""

    makespan_s: float
    overlap: int
    """The most work requests running at once."""
    overlap_by_pid: dict[int, int]
    count_by_pid: dict[int, int]
    """Work requests each pid served."""
    health_p99_ms: float | None
    """None when no health check was answered."""
    health_max_ms: float | None
    health_checks: int
    """Health checks sent, answered or not."""
    errors: dict[str, int]
    """Failed work requests by error class."""

    @property
    def error_count(self) -> int:
        """Failed work requests."""
        return sum(self.errors.values())


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def summary(records: Sequence[RequestRecord]) -> BurstSummary:
    """The figures the reports show for one burst."""
    health = health_latencies(records)
    return BurstSummary(
        makespan_s=makespan_s(records),
        overlap=max_overlap(interval(r) for r in work_records(records)),
        overlap_by_pid=overlap_by_pid(records),
        count_by_pid=counts_by_pid(records),
        health_p99_ms=_ms(percentile(health, 99)),
        health_max_ms=_ms(max(health, default=None)),
        health_checks=len([r for r in records if r.kind == Kind.HEALTH]),
        errors=errors_by_class(records),
    )
