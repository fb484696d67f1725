"""Measure 1: the probe's HTTP engine against wrk and hey on the same /ping."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from bench.common import TIMES, Figure, MeasureResult, alternate, group_pids, judged, median, paired_ratio
from bench.loadgen import TOOLS, Load, ToolError, available, run_load
from bench.servers import pin_server
from launcher.child import ServerProcess

MEASURE = "1 probe client"
TARGET_VS_WRK = 0.9
CONNECTIONS = (1, 50)


def run(server: ServerProcess, *, duration: float, reps: int, say: Callable[[str], None] = print) -> MeasureResult:
    started = time.monotonic()
    result = MeasureResult()
    tools = [t for t in TOOLS if available(t)]
    for tool in TOOLS:
        if tool not in tools:
            note = f"{tool} is not installed (bench/setup.sh installs it with apt-get): skipped"
            result.notes.append(note)
            say(note)
    url = server.url + "/ping"
    runs: list[Load] = []
    by_rep: dict[str, list[float]] = {}
    """Rates by repetition (NaN where a run failed), for ratios paired within each repetition."""
    failures: list[str] = []
    assert server.pid is not None
    pids = group_pids(server.pid)
    for pinned in (True, False):
        pinned_threads = pin_server(server, pinned)
        say(f"  server {'pinned to core 0' if pinned else 'on every core'} ({pinned_threads} threads)")
        for rep in range(reps):
            for connections in CONNECTIONS:
                for tool in alternate(tools, rep):
                    rates = by_rep.setdefault(_key(pinned, connections, tool), [])
                    try:
                        load = run_load(tool, url, connections, duration, pinned=pinned, server_pids=pids)
                    except ToolError as exc:
                        failures.append(str(exc))
                        say(f"  {tool}: {exc}")
                        rates.append(math.nan)
                        continue
                    runs.append(load)
                    rates.append(load.rate)
                    say(
                        f"  {'pinned  ' if pinned else 'unpinned'} c={connections:<2} {tool:<15} "
                        f"{load.rate:8.0f} req/s  p50 {load.p50_ms:7.2f} ms  p99 {load.p99_ms:7.2f} ms"
                        + (f"  client CPU {load.cpu_share:4.0%}" if load.cpu_share is not None else "")
                        + (f"  errors {load.errors}" if load.errors else "")
                    )
    pin_server(server, False)
    summary: dict[str, Any] = {}
    for pinned in (True, False):
        for connections in CONNECTIONS:
            for tool in tools:
                chosen = [r for r in runs if r.pinned == pinned and r.connections == connections and r.tool == tool]
                if not chosen:
                    continue
                summary[_key(pinned, connections, tool)] = {
                    "rates_by_rep": by_rep.get(_key(pinned, connections, tool), []),
                    "rate": median([r.rate for r in chosen]),
                    "p50_ms": median([r.p50_ms for r in chosen]),
                    "p99_ms": median([r.p99_ms for r in chosen]),
                    "cpu_share": median([r.cpu_share for r in chosen if r.cpu_share is not None]),
                    "server_cpu_us": median([r.server_cpu_us for r in chosen if r.server_cpu_us is not None]),
                    "errors": sum(r.errors for r in chosen),
                    "runs": len(chosen),
                }
    result.raw = {"duration_s": duration, "reps": reps, "runs": [r.to_dict() for r in runs], "medians": summary}
    result.raw["failures"] = failures
    result.figures = figures(summary)
    result.seconds = time.monotonic() - started
    return result


def _key(pinned: bool, connections: int, tool: str) -> str:
    return f"{'pinned' if pinned else 'unpinned'}/c{connections}/{tool}"


def figures(summary: dict[str, Any]) -> list[Figure]:
    out: list[Figure] = []

    def get(pinned: bool, connections: int, tool: str) -> dict[str, Any] | None:
        value: dict[str, Any] | None = summary.get(_key(pinned, connections, tool))
        return value

    for pinned in (True, False):
        where = "pinned" if pinned else "unpinned"
        for connections in CONNECTIONS:
            wrk = get(pinned, connections, "wrk")
            hey = get(pinned, connections, "hey")
            for variant in ("probe-keepalive", "probe-newconn", "probe-uvloop"):
                probe = get(pinned, connections, variant)
                if probe is None:
                    continue
                label = {
                    "probe-keepalive": "probe keep-alive",
                    "probe-newconn": "probe new conn/request",
                    "probe-uvloop": "probe keep-alive on uvloop",
                }[variant]
                rates = f"median of paired ratios; medians probe {probe['rate']:.0f} req/s"
                if wrk:
                    rates += f", wrk {wrk['rate']:.0f}"
                if hey:
                    rates += f", hey {hey['rate']:.0f}"
                lat = f"; p50/p99 probe {probe['p50_ms']:.2f}/{probe['p99_ms']:.2f} ms"
                if wrk:
                    lat += f", wrk {wrk['p50_ms']:.2f}/{wrk['p99_ms']:.2f}"
                if hey:
                    lat += f", hey {hey['p50_ms']:.2f}/{hey['p99_ms']:.2f}"
                cpu = f"; client CPU probe {probe['cpu_share']:.0%}"
                if wrk:
                    cpu += f", wrk {wrk['cpu_share']:.0%}"
                cpu += f"; server CPU/request probe {probe['server_cpu_us']:.0f} µs"
                if wrk:
                    cpu += f", wrk {wrk['server_cpu_us']:.0f} µs"
                lat += cpu
                name = f"{label} rate vs wrk, c={connections}, {where}"
                value = paired_ratio(probe["rates_by_rep"], wrk["rates_by_rep"]) if wrk else None
                # The target is the engine's own capacity at 50 connections;
                # the rest is reported for information.
                if connections == 50 and variant == "probe-keepalive":
                    out.append(judged(MEASURE, name, value, TIMES, at_least=TARGET_VS_WRK, detail=rates + lat))
                else:
                    out.append(judged(MEASURE, name, value, TIMES, detail=rates + lat))
    return out
