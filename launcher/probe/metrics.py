"""Figures derived from request records: pure functions, no I/O."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from launcher.probe.model import RequestRecord

OVERLAP_EPSILON_NS = 1_000_000
"""Intervals that merely touch (one ends, the next starts within 1 ms) do not overlap."""


def work_records(records: Iterable[RequestRecord], *, kinds: tuple[str, ...] = ("api", "demo")) -> list[RequestRecord]:
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
    work = [r for r in records if r.kind in ("api", "demo")]
    if not work:
        return 0.0
    return (max(r.received_ns for r in work) - min(r.sent_ns for r in work)) / 1e9


def span_s(records: Sequence[RequestRecord]) -> float:
    """From the first work start to the last work end, server side."""
    work = work_records(records)
    if not work:
        return 0.0
    return (max(interval(r)[1] for r in work) - min(interval(r)[0] for r in work)) / 1e9


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by the nearest-rank method; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


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
    return [health_latency(r) for r in records if r.kind == "health" and r.ok]


def errors_by_class(records: Iterable[RequestRecord], *, kinds: tuple[str, ...] = ("api", "demo")) -> dict[str, int]:
    """Failed requests of ``kinds`` counted by error class."""
    return dict(Counter(r.error or f"http_{r.status}" for r in records if r.kind in kinds and not r.ok))


def summary(records: Sequence[RequestRecord]) -> dict[str, object]:
    """The figures the report shows for one burst."""
    health = health_latencies(records)
    return {
        "makespan_s": round(makespan_s(records), 3),
        "overlap": max_overlap(interval(r) for r in work_records(records)),
        "overlap_by_pid": overlap_by_pid(records),
        "count_by_pid": counts_by_pid(records),
        "health_p99_ms": round(percentile(health, 0.99) * 1000, 1),
        "health_max_ms": round(max(health, default=0.0) * 1000, 1),
        "health_checks": len([r for r in records if r.kind == "health"]),
        "errors": errors_by_class(records),
    }
