"""Measure 4: what ``?attribution=true`` costs on /ping (same server, alternating)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from bench.common import TIMES, MeasureResult, alternate, group_pids, judged, median, paired_ratio
from bench.loadgen import ToolError, best_tool, run_load
from bench.servers import pin_server
from launcher.child import ServerProcess

MEASURE = "4 attribution"
TARGET = 0.95
CONNECTIONS = 50
PATHS = {"plain": "/ping", "attributed": "/ping?attribution=true"}


def run(server: ServerProcess, *, reps: int, duration: float, say: Callable[[str], None] = print) -> MeasureResult:
    started = time.monotonic()
    result = MeasureResult()
    tool = best_tool()
    pin_server(server, True)
    rates: dict[str, list[float]] = {k: [] for k in PATHS}
    cpu_us: dict[str, list[float]] = {k: [] for k in PATHS}
    assert server.pid is not None
    pids = group_pids(server.pid)
    try:
        for rep in range(reps):
            for key in alternate(tuple(PATHS), rep):
                try:
                    load = run_load(tool, server.url + PATHS[key], CONNECTIONS, duration, pinned=True, server_pids=pids)
                except ToolError as exc:
                    # NaN keeps the repetitions paired.
                    result.notes.append(f"attribution {key}: {exc}")
                    rates[key].append(math.nan)
                    cpu_us[key].append(math.nan)
                    continue
                rates[key].append(load.rate)
                cpu_us[key].append(load.server_cpu_us if load.server_cpu_us is not None else math.nan)
                say(f"  {key:<10} {load.rate:7.0f} req/s, server CPU {load.server_cpu_us or 0:6.0f} µs/request")
    finally:
        pin_server(server, False)
    plain, attributed = median(rates["plain"]), median(rates["attributed"])
    result.figures.append(
        judged(
            MEASURE,
            "/ping?attribution=true rate / /ping rate",
            paired_ratio(rates["attributed"], rates["plain"]),
            TIMES,
            at_least=TARGET,
            detail=f"median of paired ratios; medians {attributed:.0f} vs {plain:.0f} req/s ({tool}, "
            f"c={CONNECTIONS}, pinned, {reps} reps)",
        )
    )
    plain_cpu, attributed_cpu = median(cpu_us["plain"]), median(cpu_us["attributed"])
    result.figures.append(
        judged(
            MEASURE,
            "capacity from server CPU per request, attributed / plain",
            paired_ratio(cpu_us["plain"], cpu_us["attributed"]),
            TIMES,
            detail=f"medians {attributed_cpu:.0f} vs {plain_cpu:.0f} µs of server CPU per request: the same cost, "
            "read off CPU time, which the other processes on the machine disturb far less than a rate",
        )
    )
    result.raw = {"tool": tool, "duration_s": duration, "reps": reps, "rates": rates, "server_cpu_us": cpu_us}
    result.seconds = time.monotonic() - started
    return result
