"""Measure 3: the launcher's embedded server vs the same backend from its own command line.

For each backend, 1 worker, ``--model none``, mode ``sync``:

- A (embedded): ``python -m launcher --profile BACKEND-1-sync --model none --port P``;
- B (CLI): ``uvicorn --factory app.main:create_app``, ``gunicorn -k uvicorn_worker.UvicornWorker
  'app.main:create_app()'``, ``hypercorn 'app.main:create_app()'``, ``granian --interface asgi
  --factory app.main:create_app``, ``gunicorn -k asgi 'app.main:create_app()'`` with
  ``LAUNCH_MODEL=none LAUNCH_MODE=sync``; for Ray, ``serve run`` of the config file
  ``launch serve-config --profile ray-1-sync`` writes (no model, the bench's port).

Start: each start alone on the machine, timed from ``Popen`` to the first 200
on ``/health`` (polled every 10 ms), A and B alternating.

Rate: A and B serve side by side (an idle server costs nothing), both pinned
to core 0, and the load generator (core 1) alternates between them, a few
seconds each, so that A's and B's runs are seconds apart rather than a whole
start apart: on a shared machine the background load drifts between those.
The server's CPU time per request is read at the same time.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import (
    SERVER_CPU,
    TIMES,
    MeasureResult,
    alternate,
    first_200,
    free_port,
    group_pids,
    group_process,
    judged,
    median,
    paired_ratio,
    pin,
)
from bench.loadgen import ToolError, best_tool, run_load
from bench.servers import APP_ENV, embedded_command, native_command
from launcher.probe.limits import OPT_IN_BACKENDS

MEASURE = "3 embedding"
BACKENDS = ("uvicorn", "gunicorn", "hypercorn", "granian", "gunicorn-asgi", "ray")
SIDES = ("embedded", "native")
TARGET_TIME = 1.05
TARGET_RATE = 0.98
CONNECTIONS = 50


def _argv(side: str, backend: str, port: int, folder: Path) -> tuple[list[str], dict[str, str]]:
    if side == "embedded":
        return embedded_command(backend, port), {}
    return native_command(backend, port, folder), dict(APP_ENV)


def _grace(backend: str) -> float:
    # Ray's graceful shutdown (Serve, then the GCS and raylet) takes longer than a server's stop.
    return 30.0 if backend in OPT_IN_BACKENDS else 15.0


def time_start(side: str, backend: str, folder: Path) -> float:
    """Seconds from Popen to the first 200 on /health; the server is stopped again."""
    port = free_port()
    argv, env = _argv(side, backend, port, folder)
    started = time.monotonic()
    with group_process(argv, env=env, grace=_grace(backend)) as proc:
        return first_200(proc, port, started=started)


def compare_rates(
    backend: str, *, reps: int, duration: float, tool: str, folder: Path, say: Callable[[str], None]
) -> list[dict[str, Any]]:
    """Both sides serving at once; the load alternates between them ``reps`` times."""
    runs: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        servers: dict[str, tuple[int, list[int]]] = {}
        for side in SIDES:
            port = free_port()
            argv, env = _argv(side, backend, port, folder)
            proc = stack.enter_context(group_process(argv, env=env, grace=_grace(backend)))
            first_200(proc, port, started=time.monotonic())
            servers[side] = (port, [proc.pid])
        # Every worker up (gunicorn's answers before its arbiter settles): a moment, then pin.
        time.sleep(0.5)
        for side, (port, leader) in servers.items():
            pids = group_pids(leader[0])
            pin(pids, {SERVER_CPU})
            servers[side] = (port, pids)
        for rep in range(reps):
            for side in alternate(SIDES, rep):
                port, pids = servers[side]
                load = run_load(
                    tool, f"http://127.0.0.1:{port}/ping", CONNECTIONS, duration, pinned=True, server_pids=pids
                )
                runs.append(
                    {
                        "rep": rep,
                        "side": side,
                        "rate": load.rate,
                        "server_cpu_us": load.server_cpu_us,
                        "errors": load.errors,
                        "processes": len(pids),
                    }
                )
                say(
                    f"  {backend:<9} {side:<8} /ping {load.rate:7.0f} req/s ({tool}, c={CONNECTIONS}), "
                    f"server CPU {load.server_cpu_us or 0:5.0f} µs/request"
                )
    return runs


def run(*, reps: int, rate_reps: int, duration: float, say: Callable[[str], None] = print) -> MeasureResult:
    with tempfile.TemporaryDirectory(prefix="bench-embedding-") as folder:
        return _run(reps=reps, rate_reps=rate_reps, duration=duration, folder=Path(folder), say=say)


def _run(*, reps: int, rate_reps: int, duration: float, folder: Path, say: Callable[[str], None]) -> MeasureResult:
    started = time.monotonic()
    result = MeasureResult()
    tool = best_tool()
    starts: dict[str, dict[str, list[float]]] = {b: {s: [] for s in SIDES} for b in BACKENDS}
    # Paired by repetition: a start that failed leaves NaN, so the pairs stay aligned.
    rates: dict[str, list[dict[str, Any]]] = {b: [] for b in BACKENDS}
    for backend in BACKENDS:
        for rep in range(reps):
            for side in alternate(SIDES, rep):
                try:
                    seconds = time_start(side, backend, folder)
                except RuntimeError as exc:
                    say(f"  {backend} {side}: {exc}")
                    result.notes.append(f"embedding {backend} {side}: {exc}")
                    seconds = math.nan
                starts[backend][side].append(seconds)
                say(f"  {backend:<9} {side:<8} start-to-first-200 {seconds:6.2f} s")
        try:
            rates[backend] = compare_rates(
                backend, reps=rate_reps, duration=duration, tool=tool, folder=folder, say=say
            )
        except (RuntimeError, ToolError) as exc:
            say(f"  {backend} rates: {exc}")
            result.notes.append(f"embedding {backend} rates: {exc}")
    summary: dict[str, Any] = {}
    for backend in BACKENDS:
        row: dict[str, Any] = {}
        for side in SIDES:
            chosen = [r for r in rates[backend] if r["side"] == side]
            ok_starts = [t for t in starts[backend][side] if not math.isnan(t)]
            row[side] = {
                "start_s": median(ok_starts),
                "starts": len(ok_starts),
                "rate": median([r["rate"] for r in chosen]),
                "server_cpu_us": median([r["server_cpu_us"] for r in chosen if r["server_cpu_us"] is not None]),
                "rate_runs": len(chosen),
            }
        by_rep = {side: {r["rep"]: r for r in rates[backend] if r["side"] == side} for side in SIDES}
        reps_done = sorted(set(by_rep["embedded"]) & set(by_rep["native"]))
        row["time_ratio"] = paired_ratio(starts[backend]["embedded"], starts[backend]["native"])
        row["rate_ratio"] = paired_ratio(
            [by_rep["embedded"][i]["rate"] for i in reps_done], [by_rep["native"][i]["rate"] for i in reps_done]
        )
        row["cpu_capacity_ratio"] = paired_ratio(
            [by_rep["native"][i]["server_cpu_us"] or math.nan for i in reps_done],
            [by_rep["embedded"][i]["server_cpu_us"] or math.nan for i in reps_done],
        )
        summary[backend] = row
        embedded, native = row["embedded"], row["native"]
        result.figures += [
            judged(
                MEASURE,
                f"{backend}: start-to-first-200, embedded / CLI",
                row["time_ratio"],
                TIMES,
                at_most=TARGET_TIME,
                detail=f"median of paired ratios; medians {embedded['start_s']:.2f} s vs {native['start_s']:.2f} s "
                f"({embedded['starts']}/{native['starts']} starts)",
            ),
            judged(
                MEASURE,
                f"{backend}: /ping rate, embedded / CLI",
                row["rate_ratio"],
                TIMES,
                at_least=TARGET_RATE,
                detail=f"median of paired ratios; medians {embedded['rate']:.0f} vs {native['rate']:.0f} req/s "
                f"({tool}, c={CONNECTIONS}, pinned, {embedded['rate_runs']}/{native['rate_runs']} runs)",
            ),
            judged(
                MEASURE,
                f"{backend}: capacity from server CPU per request, embedded / CLI",
                row["cpu_capacity_ratio"],
                TIMES,
                detail=f"medians {embedded['server_cpu_us']:.0f} vs {native['server_cpu_us']:.0f} µs of server CPU "
                "per /ping (every process of the group)",
            ),
        ]
    result.raw = {
        "tool": tool,
        "duration_s": duration,
        "reps": reps,
        "rate_reps": rate_reps,
        "starts": starts,
        "rates": rates,
        "summary": summary,
    }
    result.seconds = time.monotonic() - started
    return result
