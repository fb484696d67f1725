"""Measure 6: resident memory of each backend at 1 and 3 workers with the tiny pipeline loaded.

RSS is ``VmRSS`` from ``/proc/PID/status``; the total is summed over every
process of the server's group (launcher, workers, helpers such as
multiprocessing's resource tracker). RSS counts shared pages once per
process (gunicorn's forked workers share what the arbiter imported), so the
group's PSS (proportional share, ``/proc/PID/smaps_rollup``) is given too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bench.common import MeasureResult, command_line, group_pids, judged, median, pss_mib, rss_mib
from bench.servers import launched

MEASURE = "6 memory"
BACKENDS = ("uvicorn", "gunicorn", "hypercorn")
WORKERS = (1, 3)
SETTLE_S = 1.0


def run(*, quick: bool = False, say: Callable[[str], None] = print) -> MeasureResult:
    started = time.monotonic()
    result = MeasureResult()
    rows: dict[str, Any] = {}
    # Each start loads torch and the pipeline in every worker (about a minute
    # for 3 workers on 2 busy cores): --quick measures 1 worker only.
    worker_counts = WORKERS[:1] if quick else WORKERS
    if quick:
        result.notes.append("memory: --quick measures 1 worker only; the full run adds 3 workers")
    for backend in BACKENDS:
        for workers in worker_counts:
            name = f"{backend}-{workers}-sync"
            try:
                with launched(name, model="tiny") as server:
                    time.sleep(SETTLE_S)
                    assert server.pid is not None
                    pids = group_pids(server.pid)
                    workers_now = server.worker_pids_now()
                    rss = {pid: rss_mib(pid) or 0.0 for pid in pids}
                    pss = {pid: pss_mib(pid) or 0.0 for pid in pids}
                    launcher_pid = server.pid
                    others = [p for p in pids if p != launcher_pid and p not in workers_now]
                    row: dict[str, Any] = {
                        "ready_s": server.ready_seconds,
                        "launcher_pid": launcher_pid,
                        "worker_pids": list(workers_now),
                        "launcher_is_worker": launcher_pid in workers_now,
                        "total_rss_mib": sum(rss.values()),
                        "total_pss_mib": sum(pss.values()),
                        "launcher_rss_mib": rss.get(launcher_pid, 0.0),
                        "worker_rss_mib": [rss.get(p, 0.0) for p in workers_now],
                        "other_rss_mib": {command_line(p)[:80]: rss[p] for p in others},
                        "processes": len(pids),
                    }
            except Exception as exc:  # a profile that does not start is reported, not fatal
                say(f"  {name}: {exc}")
                result.notes.append(f"memory {name}: {exc}")
                continue
            rows[name] = row
            per_worker = median(row["worker_rss_mib"])
            say(
                f"  {name:<16} total RSS {row['total_rss_mib']:7.0f} MiB (PSS {row['total_pss_mib']:6.0f}) "
                f"over {row['processes']} processes; per worker {per_worker:6.0f} MiB; launcher "
                f"{row['launcher_rss_mib']:6.0f} MiB{' (is the worker)' if row['launcher_is_worker'] else ''}"
            )
            other_rss = "; ".join(f"{k}: {v:.0f}" for k, v in row["other_rss_mib"].items())
            result.figures.append(
                judged(
                    MEASURE,
                    f"{name}: total RSS (launcher + workers)",
                    row["total_rss_mib"],
                    "MiB",
                    detail=f"PSS {row['total_pss_mib']:.0f} MiB over {row['processes']} processes; launcher "
                    f"{row['launcher_rss_mib']:.0f} MiB"
                    + (" (serves in process)" if row["launcher_is_worker"] else "")
                    + (f"; others {other_rss}" if other_rss else ""),
                )
            )
            result.figures.append(
                judged(
                    MEASURE,
                    f"{name}: RSS per worker",
                    per_worker,
                    "MiB",
                    detail="workers: " + ", ".join(f"{v:.0f}" for v in row["worker_rss_mib"]) + " MiB",
                )
            )
    result.raw = {"model": "tiny", "settle_s": SETTLE_S, "workers": list(worker_counts), "rows": rows}
    result.seconds = time.monotonic() - started
    return result
