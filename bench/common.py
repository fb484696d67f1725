"""What every measure shares: figures, statistics, processes, pinning, memory, machine facts."""

from __future__ import annotations

import contextlib
import datetime
import http.client
import importlib.metadata
import math
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from launcher import lifeline, procs
from launcher.child import DEFAULT_START_TIMEOUT
from launcher.procs import group_alive, kill_group

REPO = Path(__file__).resolve().parent.parent
SERVER_CPU = 0
CLIENT_CPU = 1
TIMES = "\u00d7"
"""The unit of ratios (a multiplication sign)."""
BASE_ENV = {"GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_SHARE": "False"}


# --- figures -----------------------------------------------------------------


@dataclass(kw_only=True)
class Figure:
    """One reported number, with its target and verdict."""

    measure: str
    name: str
    value: float | None
    unit: str
    target: str = "—"
    """Human form of the target, e.g. ``≥ 0.9x``; ``—`` when the figure is information only."""
    status: str = "INFO"
    """``PASS``, ``MISS``, ``INFO``, ``SKIP`` or ``ERROR``."""
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def judged(
    measure: str,
    name: str,
    value: float | None,
    unit: str,
    *,
    at_least: float | None = None,
    at_most: float | None = None,
    detail: str = "",
) -> Figure:
    """A figure checked against ``at_least`` or ``at_most`` (PASS/MISS; SKIP when there is no value)."""
    suffix = TIMES if unit == TIMES else f" {unit}"
    if at_least is not None:
        target = f"≥ {at_least:g}{suffix}"
        ok = value is not None and value >= at_least
    elif at_most is not None:
        target = f"≤ {at_most:g}{suffix}"
        ok = value is not None and value <= at_most
    else:
        return Figure(measure=measure, name=name, value=value, unit=unit, detail=detail)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return Figure(measure=measure, name=name, value=None, unit=unit, target=target, status="SKIP", detail=detail)
    return Figure(
        measure=measure,
        name=name,
        value=value,
        unit=unit,
        target=target,
        status="PASS" if ok else "MISS",
        detail=detail,
    )


@dataclass(kw_only=True)
class MeasureResult:
    """What one measure returns: its figures and its raw data."""

    figures: list[Figure] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


# --- statistics --------------------------------------------------------------


def median(values: Sequence[float | None]) -> float:
    """Median of the values that are there (None and NaN are left out), NaN for none."""
    kept = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.median(kept) if kept else math.nan


def ratio(a: float, b: float) -> float:
    """``a / b``, NaN when either is missing or ``b`` is 0."""
    if a is None or b is None or math.isnan(a) or math.isnan(b) or b == 0:
        return math.nan
    return a / b


def paired_ratio(a: Sequence[float], b: Sequence[float]) -> float:
    """Median of ``a[i] / b[i]``: each repetition's A and B ran seconds apart, under the same background load.

    On a shared machine the background drifts over minutes; a ratio taken
    within each repetition cancels what the two runs shared, where a ratio
    of two medians does not.
    """
    ratios = [ratio(x, y) for x, y in zip(a, b, strict=False)]
    return median([r for r in ratios if not math.isnan(r)])


def alternate(items: Sequence[Any], rep: int) -> list[Any]:
    """``items`` rotated by ``rep``: run k of A/B/... starts with a different one each repetition."""
    k = rep % len(items)
    return list(items[k:]) + list(items[:k])


# --- machine -----------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def debian_version(name: str) -> str | None:
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", name], capture_output=True, text=True, check=False, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def machine_facts() -> dict[str, Any]:
    packages = (
        "launch",
        "uvicorn",
        "gunicorn",
        "hypercorn",
        "uvicorn-worker",
        "fastapi",
        "gradio",
        "aiohttp",
        "uvloop",
        "httptools",
        "torch",
        "diffusers",
    )
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": {name: package_version(name) for name in packages}
        | {"wrk": debian_version("wrk"), "hey": debian_version("hey")},
        "load_average_at_start": os.getloadavg(),
    }


# --- pinning and memory ------------------------------------------------------


def group_pids(pgid: int) -> list[int]:
    """Live processes of process group ``pgid``, sorted."""
    found = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if os.getpgid(proc.pid) == pgid and proc.status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
                found.append(proc.pid)
    return sorted(found)


def pin(pids: Sequence[int], cpus: set[int] | None) -> int:
    """Set the CPU affinity of every thread of ``pids`` (None: every CPU); returns threads pinned.

    ``sched_setaffinity(pid)`` moves one thread only; threads that exist
    already (anyio's pool, gunicorn's) are moved one by one, and threads
    created later inherit their creator's affinity.
    """
    target = cpus if cpus is not None else set(range(os.cpu_count() or 1))
    count = 0
    for pid in pids:
        try:
            tids = [thread.id for thread in psutil.Process(pid).threads()]
        except psutil.Error:
            continue
        for tid in tids:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(tid, target)
                count += 1
    return count


def pin_group(pgid: int, cpus: set[int] | None) -> int:
    return pin(group_pids(pgid), cpus)


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time of ``pids`` so far (all their threads), in seconds."""
    return sum(procs.cpu_seconds(pid) or 0.0 for pid in pids)


def client_prefix(pinned: bool) -> list[str]:
    """Command prefix that runs a client on the client core."""
    return ["taskset", "-c", str(CLIENT_CPU)] if pinned else []


def rss_mib(pid: int) -> float | None:
    with contextlib.suppress(psutil.Error):
        return psutil.Process(pid).memory_info().rss / 2**20
    return None


def pss_mib(pid: int) -> float | None:
    with contextlib.suppress(psutil.Error, AttributeError):
        return float(psutil.Process(pid).memory_full_info().pss) / 2**20
    return None


def command_line(pid: int) -> str:
    with contextlib.suppress(psutil.Error):
        return " ".join(psutil.Process(pid).cmdline())
    return ""


# --- processes ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_group(proc: subprocess.Popen[Any], *, grace: float = 15.0) -> float:
    """SIGTERM the process group of ``proc``, SIGKILL what is left after ``grace`` s; returns seconds taken."""
    started = time.monotonic()
    pgid = proc.pid
    if group_alive(pgid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)
    # The leader is reaped (or still running); give its workers a moment, then SIGKILL the rest.
    deadline = time.monotonic() + 2.0
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.02)
    kill_group(pgid, wait=0.0)
    proc.wait()
    kill_group(pgid)
    return time.monotonic() - started


@contextlib.contextmanager
def group_process(
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    log: Path | None = None,
    cwd: Path = REPO,
    grace: float = 15.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """A child in its own session; its whole group is killed on the way out, whatever happens."""
    own_log = log is None
    if log is None:
        handle, name = tempfile.mkstemp(prefix="bench-", suffix=".log")
        os.close(handle)
        log = Path(name)
    with open(log, "ab") as out:
        # Dies with the bench even if the bench is SIGKILLed (parent-death signal).
        proc = lifeline.popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **BASE_ENV, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
    proc.log_path = log  # type: ignore[attr-defined]
    try:
        yield proc
    finally:
        stop_group(proc, grace=grace)
        if own_log:
            log.unlink(missing_ok=True)


def log_tail(proc: subprocess.Popen[Any], lines: int = 5) -> str:
    path = getattr(proc, "log_path", None)
    if path is None or not Path(path).exists():
        return ""
    kept = [line.strip() for line in Path(path).read_text(errors="replace").splitlines() if line.strip()]
    return " | ".join(kept[-lines:])


def first_200(
    proc: subprocess.Popen[Any],
    port: int,
    path: str = "/health",
    *,
    started: float,
    timeout: float = DEFAULT_START_TIMEOUT,
) -> float:
    """Seconds from ``started`` to the first 200 on ``path``, polling every 10 ms."""
    deadline = started + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with status {proc.returncode} before answering: {log_tail(proc)}")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                return time.monotonic() - started
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.01)
    raise RuntimeError(f"no 200 on {path} after {timeout:g} s: {log_tail(proc)}")


BASELINE_COMMIT = "289eb54"
"""The code before the speed work (issue 14): what the startup and matrix measures compare against."""


def baseline_tree(commit: str = BASELINE_COMMIT) -> Path:
    """A git worktree of ``commit`` (detached, made once under the temp folder), to run the old code beside this one.

    Its processes get ``PYTHONPATH`` and the working directory set to the tree
    (:func:`tree_env`), so ``python -m launcher`` there is the old launcher
    with this venv's libraries: only the code differs.
    """
    tree = Path(tempfile.gettempdir()) / f"launch-baseline-{commit}"
    if not (tree / "launcher" / "__init__.py").is_file():
        subprocess.run(["git", "-C", str(REPO), "worktree", "prune"], check=True, capture_output=True)
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), commit], check=True, capture_output=True
        )
    return tree


def tree_env(tree: Path) -> dict[str, str]:
    """Environment that makes a child import the launcher, app and profiles of ``tree``."""
    return {"PYTHONPATH": str(tree)}


def python() -> str:
    return sys.executable


def venv_bin(name: str) -> str:
    """A console script of this interpreter's environment."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name
