"""The blocking work the service does, and the attribution every response carries.

Attribution uses ``time.monotonic_ns()``: on Linux it is CLOCK_MONOTONIC, one
clock for every process on the machine, so a client can line up work done by
different workers on one axis.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

T = TypeVar("T")

# Short calibration runs, best of several: the best run is the one least
# disturbed by other processes starting at the same time on a small machine.
_CALIBRATION_ITERATIONS = 400_000
_CALIBRATION_RUNS = 5


def spin(iterations: int) -> None:
    """Pure-Python CPU work that holds the GIL (the write-up's ``for i in range(N)``)."""
    for _ in range(iterations):
        pass


def calibrate_cpu_rate() -> float:
    """Loop iterations per second of :func:`spin` on this machine (best of a few short runs)."""
    best = float("inf")
    for _ in range(_CALIBRATION_RUNS):
        started = time.perf_counter()
        spin(_CALIBRATION_ITERATIONS)
        best = min(best, time.perf_counter() - started)
    return _CALIBRATION_ITERATIONS / best


@dataclass(frozen=True, kw_only=True)
class Attribution:
    """Who did a piece of work, and when, on the machine-wide monotonic clock."""

    work: str
    """``sleep``, ``cpu`` or ``generate``."""
    kind: str
    """``api`` or ``demo``: which door the request came through."""
    mode: str
    pid: int
    thread: int
    start_ns: int
    end_ns: int
    in_flight: int
    """Requests of this process inside a handler when this work started, itself included."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


class InFlight:
    """Counts the requests of this process that are inside a handler."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0

    @property
    def count(self) -> int:
        """Requests inside a handler now."""
        return self._count

    @contextmanager
    def track(self) -> Iterator[None]:
        """Count the caller as in flight for the duration of the block."""
        with self._lock:
            self._count += 1
        try:
            yield
        finally:
            with self._lock:
                self._count -= 1


def attributed(fn: Callable[[], T], *, work: str, kind: str, mode: str, in_flight: InFlight) -> tuple[T, Attribution]:
    """Run ``fn`` in the calling thread and say who ran it and when."""
    concurrent = in_flight.count
    start = time.monotonic_ns()
    result = fn()
    end = time.monotonic_ns()
    return result, Attribution(
        work=work,
        kind=kind,
        mode=mode,
        pid=os.getpid(),
        thread=threading.get_ident(),
        start_ns=start,
        end_ns=end,
        in_flight=concurrent,
    )
