"""Measure 7: the capacity sweep's open-loop generator, measured rather than assumed.

Against the same ``/ping`` server (pinned to core 0), the generator of
``launch capacity`` (:func:`launcher.capacity.engine.open_loop`: a new
connection per request, one task each, on a fixed schedule) runs as its own
process pinned to core 1 at wrk2-style target rates. For each rate:

- **schedule accuracy**: actual send time minus scheduled send time, p99;
- **headroom**: answers per second over the target rate, and the
  generator's CPU time over the step's wall time (near 1.0 it is the
  bottleneck, and its schedule slips).

``python -m bench.capacity URL --rate R --seconds D`` runs one step and prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.common import REPO, TIMES, MeasureResult, client_prefix, judged, median, paired_ratio, python
from bench.servers import pin_server
from launcher.capacity.engine import open_loop
from launcher.capacity.model import completion_rate, schedule
from launcher.child import ServerProcess
from launcher.probe.metrics import percentile

MEASURE = "7 capacity generator"
RATES = (50.0, 200.0, 500.0)
"""Target rates on /ping; the highest is ~17x the highest knee of the README's sweeps, and ~half of what
one pinned core opens as new connections per second (bench 1: 931/s closed loop, c=1)."""
TARGET_LAG_P99_MS = 50.0
"""Send lag p99 allowed at the highest rate: 10 % of the 0.5 s p99 target, the tightest the README's sweeps use.
Latency counts from the schedule, so a late send is charged to its request: a lag this size can raise a
measured p99 by at most that much. The floor is the machine's: a bare asyncio timer on the same schedule,
measured side by side (its p99 was 6-10 ms here at a load average of 8 on 2 cores)."""
TARGET_ACHIEVED = 0.95


def _step(url: str, rate: float, seconds: float) -> dict[str, Any]:
    run = asyncio.run(open_loop(url, rate, seconds, timeout=10))
    ok = [s for s in run.samples if s.ok]
    lags = [s.send_lag_s * 1e3 for s in run.samples]
    return {
        "rate": rate,
        "seconds": seconds,
        "scheduled": run.scheduled,
        "sent": len(run.samples),
        "ok": len(ok),
        "errors": len(run.samples) - len(ok),
        "lag_p50_ms": percentile(lags, 50),
        "lag_p99_ms": percentile(lags, 99),
        "latency_p99_ms": (percentile([s.latency_s for s in ok], 99) or 0.0) * 1e3,
        "achieved_rate": completion_rate(ok, seconds),
        "cpu_seconds": run.cpu_seconds,
    }


async def _bare_timer(rate: float, seconds: float) -> list[float]:
    """The floor: the generator's dispatch loop with nothing to send; lags (ms) of waking up on schedule."""
    started = time.monotonic_ns() + 20_000_000
    lags = []
    for offset in schedule(rate, seconds):
        due = started + round(offset * 1e9)
        delay = (due - time.monotonic_ns()) / 1e9
        if delay > 0:
            await asyncio.sleep(delay)
        lags.append((time.monotonic_ns() - due) / 1e6)
    return lags


def _main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.capacity")
    parser.add_argument("url")
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--floor-first", action="store_true", help="run the bare timer before the generator")
    args = parser.parse_args(argv)
    asyncio.run(open_loop(args.url, 10, 0.3, timeout=10))  # warm-up: imports, first connection
    floor: list[float] = []
    if args.floor_first:
        floor = asyncio.run(_bare_timer(args.rate, args.seconds))
    step = _step(args.url, args.rate, args.seconds)
    if not args.floor_first:
        floor = asyncio.run(_bare_timer(args.rate, args.seconds))
    step["floor_lag_p99_ms"] = percentile(floor, 99)
    print(json.dumps(step))


def one_step(url: str, rate: float, seconds: float, *, pinned: bool, floor_first: bool) -> dict[str, Any]:
    argv = [*client_prefix(pinned), python(), "-m", "bench.capacity", url, "--rate", repr(rate)]
    argv += ["--seconds", repr(seconds)] + (["--floor-first"] if floor_first else [])
    out = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, timeout=seconds + 60, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"bench.capacity exited with {out.returncode}: {out.stderr[-300:]!r}")
    data: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return data


def run(server: ServerProcess, *, duration: float, reps: int, say: Callable[[str], None] = print) -> MeasureResult:
    started = time.monotonic()
    result = MeasureResult()
    pin_server(server, True)
    url = server.url + "/ping"
    steps: dict[float, list[dict[str, Any]]] = {rate: [] for rate in RATES}
    try:
        for rep in range(reps):
            for rate in RATES if rep % 2 == 0 else tuple(reversed(RATES)):
                step = one_step(url, rate, duration, pinned=True, floor_first=rep % 2 == 1)
                steps[rate].append(step)
                say(
                    f"rep {rep + 1}: {rate:g}/s: sent {step['sent']}/{step['scheduled']}, "
                    f"answers {step['achieved_rate']:.1f}/s, "
                    f"lag p50/p99 {step['lag_p50_ms']:.2f}/{step['lag_p99_ms']:.2f} ms "
                    f"(bare timer p99 {step['floor_lag_p99_ms']:.2f} ms), "
                    f"latency p99 {step['latency_p99_ms']:.1f} ms, CPU {step['cpu_seconds'] / duration:.0%}, "
                    f"errors {step['errors']}"
                )
    finally:
        pin_server(server, False)
    top = max(RATES)
    for rate in RATES:
        lag = median([s["lag_p99_ms"] for s in steps[rate]])
        floor = median([s["floor_lag_p99_ms"] for s in steps[rate]])
        vs_floor = paired_ratio([s["lag_p99_ms"] for s in steps[rate]], [s["floor_lag_p99_ms"] for s in steps[rate]])
        achieved = median([s["achieved_rate"] / rate for s in steps[rate]])
        cpu = median([s["cpu_seconds"] / duration for s in steps[rate]])
        errors = sum(s["errors"] for s in steps[rate])
        latency = median([s["latency_p99_ms"] for s in steps[rate]])
        detail = (
            f"median of {reps}; {duration:g} s steps, new connection per request, generator pinned to core 1, "
            f"server to core 0; latency p99 {latency:.1f} ms; errors {errors}; bare timer lag p99 {floor:.2f} ms"
        )
        judge = rate == top
        result.figures += [
            judged(
                MEASURE,
                f"schedule accuracy: send lag p99 at {rate:g}/s on /ping",
                lag,
                "ms",
                at_most=TARGET_LAG_P99_MS if judge else None,
                detail=detail,
            ),
            judged(
                MEASURE,
                f"schedule accuracy: send lag p99 / bare asyncio timer's at {rate:g}/s",
                vs_floor,
                TIMES,
                detail=detail,
            ),
            judged(
                MEASURE,
                f"headroom: answers / target rate at {rate:g}/s on /ping",
                achieved,
                TIMES,
                at_least=TARGET_ACHIEVED if judge else None,
                detail=detail,
            ),
            judged(MEASURE, f"headroom: generator CPU / wall time at {rate:g}/s", cpu, TIMES, detail=detail),
        ]
    result.raw = {"steps": {str(rate): runs for rate, runs in steps.items()}}
    result.seconds = time.monotonic() - started
    return result


if __name__ == "__main__":
    _main(sys.argv[1:])
