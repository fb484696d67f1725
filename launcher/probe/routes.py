"""Per-route verdicts for a user's app: what each route does to a worker, with one sentence of advice.

Measured per burst (N concurrent requests to one route) from three sources the
launcher adds without touching the app: the attribution headers (which worker
pid served each request, and when it ran on the machine-wide monotonic clock),
the workers' event-loop lag reports (``X_LAUNCH_LAG``: the longest stall and the
total blocked time in each 100 ms window) and each worker's CPU time.

The classes, tested in this order:

``fails``
    a request errored or answered 4xx/5xx.
``blocks_event_loop``
    a worker that served the route had its event loop stalled for at least
    :data:`BLOCK_FLOOR_MS` and 0.8 of the route's median server time: the route
    runs blocking code on the loop, and nothing else on that worker moves.
``cpu_bound_threads``
    requests overlapped on one worker, yet that worker burnt CPU for at least
    :data:`CPU_SHARE` of the time it was busy: pure-Python work in threads,
    which share one GIL, so overlapping requests only take turns.
``serialized_per_worker``
    the loop stayed free, but on each worker the k requests finished one after
    another (the last took at least half-way to k times the first: a lock, a
    limiter or a single connection).
``runs_concurrently``
    none of the above: the requests on one worker ran side by side.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from launcher.probe.metrics import BLOCK_FLOOR_MS, covered_ns, max_overlap
from launcher.probe.model import RequestRecord

FAILS = "fails"
BLOCKS = "blocks_event_loop"
CPU_THREADS = "cpu_bound_threads"
SERIALIZED = "serialized_per_worker"
CONCURRENT = "runs_concurrently"
CLASSES: tuple[str, ...] = (FAILS, BLOCKS, CPU_THREADS, SERIALIZED, CONCURRENT)
"""Most severe first: a route's class over repeats is the most severe one seen."""

CPU_SHARE = 0.3
"""Worker CPU seconds per second busy above which overlapping requests are CPU-bound (a sleeping route uses ~0)."""

ADVICE: dict[str, str] = {
    FAILS: "The route errors under load: see the status and the server log; no server set-up fixes that.",
    BLOCKS: (
        "async def calling blocking code: make it def, or run the call with anyio.to_thread.run_sync "
        "(or use an async client) so the event loop keeps serving other requests."
    ),
    CPU_THREADS: (
        "Pure-Python CPU work in threads shares one GIL per worker: run it in worker processes "
        "(workers ≈ cores, or a ProcessPoolExecutor), or in a library that releases the GIL."
    ),
    SERIALIZED: (
        "Requests wait for each other inside one worker (a lock, a limiter of 1, one connection): "
        "fine if intended, else widen that limit or add workers."
    ),
    CONCURRENT: "Written right: concurrent requests on one worker run side by side.",
}
LABELS: dict[str, str] = {
    FAILS: "fails",
    BLOCKS: "blocks the event loop",
    CPU_THREADS: "CPU-bound in threads (GIL)",
    SERIALIZED: "serialized per worker",
    CONCURRENT: "runs concurrently",
}


@dataclass(frozen=True, kw_only=True)
class BurstFacts:
    """What one burst of one route showed."""

    calls: tuple[RequestRecord, ...]
    """The burst's requests (or Gradio clicks), as the one probe client records them."""
    stall_ms: dict[int, float] = field(default_factory=dict)
    """Longest event-loop stall per worker pid during the burst."""
    blocked_ms: dict[int, float] = field(default_factory=dict)
    """Total event-loop lag per worker pid during the burst."""
    cpu_s: dict[int, float] = field(default_factory=dict)
    """CPU seconds each worker used during the burst."""


@dataclass(frozen=True, kw_only=True)
class BurstVerdict:
    """One burst's class and the figures it rests on."""

    route_class: str
    longest_stall_ms: float
    blocked_ms: float
    makespan_s: float
    failed: int
    errors: tuple[str, ...]
    workers_used: int
    max_overlap: int
    serial_ratio: float
    """Per worker: (last end - first start) / (first end - first start); ≈1 side by side, ≈k one after another."""
    cpu_share: float
    """CPU seconds per second busy, on the busiest worker."""


def classify_burst(facts: BurstFacts) -> BurstVerdict:
    """The class of one burst (see the module's docstring for the rules)."""
    calls = facts.calls
    by_pid: dict[int | None, list[RequestRecord]] = {}
    for call in calls:
        by_pid.setdefault(call.served_by, []).append(call)
    pids = [pid for pid in by_pid if pid is not None]
    failed = [c for c in calls if not c.ok]
    errors = tuple(sorted({c.error or f"http_{c.status}" for c in failed}))
    stall = max((facts.stall_ms.get(pid, 0.0) for pid in pids), default=max(facts.stall_ms.values(), default=0.0))
    blocked = sum(facts.blocked_ms.get(pid, 0.0) for pid in pids) if pids else sum(facts.blocked_ms.values())
    intervals = [c.interval_ns for c in calls]
    makespan = (max(b for _, b in intervals) - min(a for a, _ in intervals)) / 1e9 if calls else 0.0
    median_ms = statistics.median((b - a) / 1e6 for a, b in intervals) if calls else 0.0
    overlap = max((max_overlap(c.interval_ns for c in group) for group in by_pid.values()), default=0)
    ratios: list[float] = []
    shares: list[float] = []
    serial = False
    for pid, group in by_pid.items():
        if len(group) < 2:
            continue
        spans = [c.interval_ns for c in group]
        first_start = min(a for a, _ in spans)
        first_end = min(b for _, b in spans)
        last_end = max(b for _, b in spans)
        ratio = (last_end - first_start) / max(1, first_end - first_start)
        ratios.append(ratio)
        # Half-way to fully one-after-another (k times the first) counts as serialized.
        serial = serial or ratio >= 1 + 0.5 * (len(group) - 1)
        busy = covered_ns(spans) / 1e9
        if pid is not None and busy > 0 and pid in facts.cpu_s:
            shares.append(facts.cpu_s[pid] / busy)
    cpu_share = max(shares, default=0.0)
    if failed:
        route_class = FAILS
    elif stall >= max(BLOCK_FLOOR_MS, 0.8 * median_ms):
        route_class = BLOCKS
    elif overlap >= 2 and cpu_share >= CPU_SHARE and not serial:
        route_class = CPU_THREADS
    elif serial:
        route_class = SERIALIZED
    else:
        route_class = CONCURRENT
    return BurstVerdict(
        route_class=route_class,
        longest_stall_ms=round(stall, 1),
        blocked_ms=round(blocked, 1),
        makespan_s=round(makespan, 3),
        failed=len(failed),
        errors=errors,
        workers_used=len(pids),
        max_overlap=overlap,
        serial_ratio=round(max(ratios, default=1.0), 2),
        cpu_share=round(cpu_share, 2),
    )


def route_class(verdicts: Sequence[BurstVerdict]) -> str:
    """A route's class over its repeats: the most severe one seen (a verdict must hold in every repeat)."""
    seen = {v.route_class for v in verdicts}
    return next((c for c in CLASSES if c in seen), CONCURRENT)
