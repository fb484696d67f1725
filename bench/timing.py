"""Measure 2: timing accuracy of known sleeps through the probe's full path.

Bursts of ``GET /test1?seconds=X`` go through the probe's own engine
(:func:`launcher.probe.client.run_burst`, new connection per request, as a
probe does); each response's attribution gives the server-side interval
(``end_ns - start_ns``) and the client gives the latency. The error is the
measured duration minus X.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.common import MeasureResult, judged
from launcher.child import ServerProcess
from launcher.probe.client import RequestSpec, run_burst
from launcher.probe.metrics import percentile

MEASURE = "2 timing accuracy"
TARGET_SERVER_P99_MS = 2.0
DURATIONS = (0.05, 0.2, 1.0, 2.0)
BURST = 3
"""Concurrent requests per burst, as ``launch probe -n 3`` (its default); the sync worker's threads run them."""


def _fixed(value: float | None, digits: int = 3) -> str:
    # percentile() is None for no samples (every request failed): said, not a crash of the report.
    return "n/a" if value is None else f"{value:.{digits}f}"


def _bare_sleep(seconds: float) -> float:
    start = time.monotonic_ns()
    time.sleep(seconds)
    return ((time.monotonic_ns() - start) / 1e9 - seconds) * 1e3


def bare_burst(pool: ThreadPoolExecutor, seconds: float) -> list[float]:
    """The machine's own floor: BURST threads of one process sleep at once, timed as the server times its work."""
    return list(pool.map(_bare_sleep, [seconds] * BURST))


def plan(quick: bool) -> dict[float, int]:
    """Bursts per duration: about the same wall time for each, at least two."""
    if quick:
        return {0.05: 6, 0.2: 3, 1.0: 2, 2.0: 2}
    return {0.05: 20, 0.2: 10, 1.0: 4, 2.0: 3}


def _rounds(
    server: ServerProcess,
    bursts: dict[float, int],
    samples: dict[float, dict[str, list[float]]],
    pool: ThreadPoolExecutor,
) -> int:
    """Bursts through the probe's engine, bare sleeps alternating with them; returns failed requests."""
    failed = 0
    # Interleave the durations: each round has one burst of each still needed.
    for round_index in range(max(bursts.values())):
        for seconds in DURATIONS:
            if round_index >= bursts[seconds]:
                continue
            # A and B alternate: the bare sleeps right before or after each burst.
            if round_index % 2:
                samples[seconds]["bare"] += bare_burst(pool, seconds)
            specs = [RequestSpec(kind="api", work="sleep", path=f"/test1?seconds={seconds:g}") for _ in range(BURST)]
            records = asyncio.run(run_burst(server.url, specs, timeout=seconds + 30, workers=1, health=False))
            for record in records:
                if not record.ok or record.start_ns is None or record.end_ns is None:
                    failed += 1
                    continue
                samples[seconds]["server"].append(((record.end_ns - record.start_ns) / 1e9 - seconds) * 1e3)
                samples[seconds]["client"].append((record.latency_s - seconds) * 1e3)
            if not round_index % 2:
                samples[seconds]["bare"] += bare_burst(pool, seconds)
    return failed


def single_requests(server: ServerProcess, count: int, seconds: float = 0.05) -> list[float]:
    """Server interval errors (ms) with one request at a time: no other thread of the worker wakes with it."""
    errors = []
    for _ in range(count):
        spec = RequestSpec(kind="api", work="sleep", path=f"/test1?seconds={seconds:g}")
        for record in asyncio.run(run_burst(server.url, [spec], timeout=seconds + 30, workers=1, health=False)):
            if record.ok and record.start_ns is not None and record.end_ns is not None:
                errors.append(((record.end_ns - record.start_ns) / 1e9 - seconds) * 1e3)
    return errors


def run(server: ServerProcess, *, quick: bool, say: Callable[[str], None] = print) -> MeasureResult:
    started = time.monotonic()
    result = MeasureResult()
    samples: dict[float, dict[str, list[float]]] = {d: {"server": [], "client": [], "bare": []} for d in DURATIONS}
    bursts = plan(quick)
    pool = ThreadPoolExecutor(max_workers=BURST, thread_name_prefix="bench-sleep")
    try:
        failed = _rounds(server, bursts, samples, pool)
    finally:
        pool.shutdown()
    alone = single_requests(server, 20 if quick else 60)
    say(
        f"  one request at a time, 50 ms x{len(alone)}: server error p50 {_fixed(percentile(alone, 50))} "
        f"p99 {_fixed(percentile(alone, 99))} ms"
    )
    per_duration: dict[str, Any] = {}
    for seconds in DURATIONS:
        server_errors = samples[seconds]["server"]
        client_errors = samples[seconds]["client"]
        bare_errors = samples[seconds]["bare"]
        per_duration[f"{seconds:g}"] = {
            "n": len(server_errors),
            "server_p50_ms": percentile(server_errors, 50),
            "server_p99_ms": percentile(server_errors, 99),
            "server_min_ms": min(server_errors, default=float("nan")),
            "client_p50_ms": percentile(client_errors, 50),
            "client_p99_ms": percentile(client_errors, 99),
            "bare_p50_ms": percentile(bare_errors, 50),
            "bare_p99_ms": percentile(bare_errors, 99),
        }
        row = per_duration[f"{seconds:g}"]
        say(
            f"  {seconds * 1e3:6.0f} ms x{row['n']:<3} server error p50 {_fixed(row['server_p50_ms'])} "
            f"p99 {_fixed(row['server_p99_ms'])} ms; client error p50 {_fixed(row['client_p50_ms'])} "
            f"p99 {_fixed(row['client_p99_ms'])} ms; bare time.sleep p50 {_fixed(row['bare_p50_ms'])} "
            f"p99 {_fixed(row['bare_p99_ms'])} ms"
        )
    every_server = [e for d in DURATIONS for e in samples[d]["server"]]
    every_client = [e for d in DURATIONS for e in samples[d]["client"]]
    every_bare = [e for d in DURATIONS for e in samples[d]["bare"]]
    result.raw = {
        "burst": BURST,
        "per_duration": per_duration,
        "failed": failed,
        "samples": samples,
        "one_at_a_time_50ms": alone,
    }
    per = "; ".join(
        f"{k} s: {_fixed(v['server_p99_ms'], 2)}/{_fixed(v['client_p99_ms'], 2)}/{_fixed(v['bare_p99_ms'], 2)}"
        for k, v in per_duration.items()
    )
    n = len(every_server)
    result.figures = [
        judged(MEASURE, f"server interval error p50 (n={n})", percentile(every_server, 50), "ms"),
        judged(
            MEASURE,
            f"server interval error p99 (n={n})",
            percentile(every_server, 99),
            "ms",
            at_most=TARGET_SERVER_P99_MS,
            detail="p99 server/client/bare per duration (ms): " + per,
        ),
        judged(
            MEASURE,
            f"reference: server interval error p99, one request at a time (n={len(alone)})",
            percentile(alone, 99),
            "ms",
            detail=f"p50 {_fixed(percentile(alone, 50))} ms; 50 ms sleeps with no other handler thread waking at the "
            f"same instant: what the {BURST}-request bursts add comes from the worker's threads finishing together "
            "(they queue for the GIL)",
        ),
        judged(
            MEASURE,
            f"reference: bare time.sleep error p99, {BURST} threads (n={len(every_bare)})",
            percentile(every_bare, 99),
            "ms",
            detail=f"p50 {_fixed(percentile(every_bare, 50))} ms; the machine's own floor at the same moments, "
            "timed as the server times its work",
        ),
        judged(MEASURE, f"client latency error p50 (n={len(every_client)})", percentile(every_client, 50), "ms"),
        judged(
            MEASURE,
            f"client latency error p99 (n={len(every_client)})",
            percentile(every_client, 99),
            "ms",
            detail="new connection per request, as run_burst sends them; includes HTTP and routing",
        ),
    ]
    if failed:
        result.notes.append(f"timing: {failed} request(s) failed")
    result.seconds = time.monotonic() - started
    return result
