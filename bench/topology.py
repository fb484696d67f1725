"""Measure 8: what the split topologies' extra hop costs per request, against a direct connection.

Two splits: Ray's (``ray-split-3-sync``, against a 1-worker uvicorn) and the one-machine split behind Caddy
(``split-gunicorn-3-offload`` with sync handlers: its front's ``/ping`` against the same ``/ping`` of one of its
API members, reached directly on the loopback port the launcher bound for it), side by side in one run.

The split topology (``ray-split-N``) serves the API in N Ray Serve replicas
and the demo in one, behind Ray's HTTP proxy: every request goes client ->
proxy -> replica, one hop more than a server whose worker owns the socket.
Both serve side by side with no model; the load generator alternates
between uvicorn-1-sync's ``/ping`` and the split's ``/api/ping``, one
connection at a time (the per-request latency, no queueing), then 10 at a
time (the rate the hop allows). Neither side is pinned: Ray's proxy,
controller and replicas are a dozen processes, and pinning them to one core
would measure the pinning. The server CPU per request counts every process
of each side's group (Ray's GCS, raylet, proxy and replicas included).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from typing import Any

import psutil

from bench.common import TIMES, MeasureResult, alternate, group_pids, judged, median, paired_ratio
from bench.loadgen import ToolError, best_tool, run_load
from bench.servers import launched
from launcher.child import ServerProcess

MEASURE = "8 topology"
SPLIT_PROFILE = "ray-split-3-sync"
REFERENCE_PROFILE = "uvicorn-1-sync"
FRONT_PROFILE = "split-gunicorn-3-offload"
"""The one-machine split, served with sync handlers as the two others are (``/ping`` is ``async`` in every mode)."""
FRONT_ADDED_MS_GOAL = 0.3
FRONT_RATE_GOAL = 0.8
CONNECTIONS = (1, 10)


def run(*, reps: int, duration: float, say: Callable[[str], None] = print) -> MeasureResult:
    started = time.monotonic()
    result = MeasureResult()
    tool = best_tool()
    sides = ("uvicorn-1", "split", "front", "direct")
    runs: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        reference = stack.enter_context(launched(REFERENCE_PROFILE, model="none"))
        split = stack.enter_context(launched(SPLIT_PROFILE, model="none"))
        front = stack.enter_context(launched(FRONT_PROFILE, model="none", mode="sync"))
        prefix = split.profile.api_prefix
        member = front_member(front)
        urls = {
            "uvicorn-1": reference.url + "/ping",
            "split": split.url + prefix + "/ping",
            "front": front.url + "/ping",
            "direct": f"http://{member}/ping",
        }
        assert reference.pid is not None and split.pid is not None and front.pid is not None
        front_pids = tree_pids(front.pid)
        pids = {
            "uvicorn-1": group_pids(reference.pid),
            # Ray's head runs under the launcher's reaper, in a process group of its own: the whole tree counts.
            "split": tree_pids(split.pid),
            "front": front_pids,
            "direct": front_pids,  # the front idles meanwhile: only the member's CPU moves
        }
        say(f"  {REFERENCE_PROFILE}: {len(pids['uvicorn-1'])} processes; {SPLIT_PROFILE}: {len(pids['split'])}")
        for connections in CONNECTIONS:
            for rep in range(reps):
                for side in alternate(sides, rep):
                    try:
                        load = run_load(tool, urls[side], connections, duration, pinned=False, server_pids=pids[side])
                    except ToolError as exc:
                        result.notes.append(f"topology {side} c={connections}: {exc}")
                        load = None
                    runs.append(
                        {
                            "side": side,
                            "connections": connections,
                            "rep": rep,
                            "rate": load.rate if load else math.nan,
                            "p50_ms": load.p50_ms if load else math.nan,
                            "p99_ms": load.p99_ms if load else math.nan,
                            "server_cpu_us": (load.server_cpu_us if load and load.server_cpu_us else math.nan),
                            "errors": load.errors if load else None,
                        }
                    )
                    if load:
                        say(
                            f"  {side:<9} c={connections:<2} {load.rate:7.0f} req/s, p50 {load.p50_ms:6.2f} ms, "
                            f"p99 {load.p99_ms:6.2f} ms, server CPU {load.server_cpu_us or 0:6.0f} µs/request"
                        )

    def series(side: str, connections: int, key: str) -> list[float]:
        return [r[key] for r in runs if r["side"] == side and r["connections"] == connections]

    def split_over_uvicorn(key: str, connections: int) -> float:
        return paired_ratio(series("split", connections, key), series("uvicorn-1", connections, key))

    def medians(key: str, connections: int) -> dict[str, float]:
        return {side: median(series(side, connections, key)) for side in sides}

    one, many = CONNECTIONS[0], CONNECTIONS[-1]
    p50, rate, cpu = medians("p50_ms", one), medians("rate", many), medians("server_cpu_us", many)
    result.figures += [
        judged(
            MEASURE,
            f"split topology /api/ping median latency / uvicorn-1 /ping, c={one}",
            split_over_uvicorn("p50_ms", one),
            TIMES,
            detail=f"median of paired ratios; medians {p50['split']:.2f} vs {p50['uvicorn-1']:.2f} ms: the proxy "
            f"hop adds {p50['split'] - p50['uvicorn-1']:.2f} ms a request ({tool}, keep-alive, "
            f"{reps} reps of {duration:g} s)",
        ),
        judged(
            MEASURE,
            f"split topology /api/ping rate / uvicorn-1 /ping, c={many}",
            split_over_uvicorn("rate", many),
            TIMES,
            detail=f"median of paired ratios; medians {rate['split']:.0f} vs {rate['uvicorn-1']:.0f} req/s "
            f"({SPLIT_PROFILE}: 3 API replicas behind Ray's proxy)",
        ),
        judged(
            MEASURE,
            f"split topology server CPU per request / uvicorn-1, c={many}",
            split_over_uvicorn("server_cpu_us", many),
            TIMES,
            detail=f"medians {cpu['split']:.0f} vs {cpu['uvicorn-1']:.0f} µs of CPU per request, every process of "
            "each side (Ray: proxy, replicas, GCS, raylet)",
        ),
    ]
    front_p50 = p50["front"] - p50["direct"]
    result.figures += [
        judged(
            MEASURE,
            f"split behind Caddy: /ping latency the front adds, c={one}",
            front_p50,
            "ms",
            at_most=FRONT_ADDED_MS_GOAL,
            detail=f"medians {p50['front']:.2f} (front) vs {p50['direct']:.2f} ms (one API member directly); Ray's "
            f"split adds {p50['split'] - p50['uvicorn-1']:.2f} ms",
        ),
        judged(
            MEASURE,
            f"split behind Caddy: /ping rate through the front / one API member directly, c={many}",
            paired_ratio(series("front", many, "rate"), series("direct", many, "rate")),
            TIMES,
            at_least=FRONT_RATE_GOAL,
            detail=f"medians {rate['front']:.0f} vs {rate['direct']:.0f} req/s (Ray's split: {rate['split']:.0f} "
            f"vs uvicorn-1 {rate['uvicorn-1']:.0f})",
        ),
    ]
    result.raw = {"tool": tool, "duration_s": duration, "reps": reps, "runs": runs}
    result.seconds = time.monotonic() - started
    return result


def front_member(server: ServerProcess) -> str:
    """``host:port`` of the split's first API member, from the READY the launcher sent."""
    for event in server.events:
        upstreams = event.fields.get("X_LAUNCH_API_UPSTREAMS")
        if upstreams:
            return upstreams.split(",")[0]
    raise RuntimeError(f"{server.profile.name} reported no API upstreams")


def tree_pids(pid: int) -> list[int]:
    """``pid`` and its descendants.

    A split's members and Caddy, and Ray's head under the launcher's reaper, run in process groups of their own.
    """
    root = psutil.Process(pid)
    return sorted([pid, *(p.pid for p in root.children(recursive=True))])
