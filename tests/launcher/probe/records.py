"""Builders for synthetic request records on a made-up monotonic clock (seconds in, nanoseconds out)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from launcher.probe.model import Kind, LogEvent, ProfileResult, RequestRecord, ScenarioResult, Status, Verdict
from profiles import Profile, builtin_profiles

if TYPE_CHECKING:
    from launcher.probe.appprobe import AppProfileResult

T0_NS = 1_000_000_000_000
"""Where the synthetic clock's second 0 lies: monotonic_ns values are large, never 0."""


def ns(seconds: float) -> int:
    """A point on the synthetic clock."""
    return T0_NS + round(seconds * 1e9)


def work(
    kind: str,
    pid: int | None,
    start_s: float | None,
    end_s: float | None,
    sent_s: float | None = None,
    received_s: float | None = None,
    *,
    what: str | None = "sleep",
    index: int = 0,
    status: int | None = 200,
    error: str | None = None,
    pipeline: tuple[float, float] | None = None,
) -> RequestRecord:
    """An api or demo record; sent 10 ms before the work starts and answered 10 ms after it ends unless given."""
    if sent_s is None:
        sent_s = (start_s if start_s is not None else 0.0) - 0.01
    if received_s is None:
        received_s = (end_s if end_s is not None else sent_s) + 0.01
    return RequestRecord(
        kind=Kind(kind),
        work=what,
        index=index,
        sent_ns=ns(sent_s),
        received_ns=ns(received_s),
        status=None if error is not None else status,
        error=error,
        pid=pid,
        start_ns=None if start_s is None else ns(start_s),
        end_ns=None if end_s is None else ns(end_s),
        pipeline_start_ns=None if pipeline is None else ns(pipeline[0]),
        pipeline_end_ns=None if pipeline is None else ns(pipeline[1]),
    )


def health(pid: int | None, sent_s: float, received_s: float, *, error: str | None = None) -> RequestRecord:
    """A /health check answered by ``pid`` (or failed with ``error``)."""
    return RequestRecord(
        kind=Kind.HEALTH,
        work=None,
        index=0,
        sent_ns=ns(sent_s),
        received_ns=ns(received_s),
        status=None if error else 200,
        error=error,
        pid=None if error else pid,
    )


def back_to_back(
    pid: int, count: int, seconds: float, *, kind: str = "api", start_s: float = 0.0
) -> list[RequestRecord]:
    """``count`` requests on ``pid``, each starting the instant the previous one ended, all sent at ``start_s``."""
    return [
        work(kind, pid, start_s + i * seconds, start_s + (i + 1) * seconds, sent_s=start_s, index=i)
        for i in range(count)
    ]


def together(pid: int, count: int, seconds: float, *, kind: str = "api", start_s: float = 0.0) -> list[RequestRecord]:
    """``count`` requests on ``pid`` running side by side over the same ``seconds``."""
    return [work(kind, pid, start_s, start_s + seconds, index=i) for i in range(count)]


def spread(counts: Sequence[int], seconds: float, *, pids: Sequence[int] = (101, 102, 103)) -> list[RequestRecord]:
    """Requests spread over ``pids`` as ``counts`` (e.g. 3/2/1), back to back within each pid."""
    records: list[RequestRecord] = []
    for pid, count in zip(pids, counts, strict=False):
        records.extend(back_to_back(pid, count, seconds))
    return records


def scenario(
    name: str,
    records: Iterable[RequestRecord],
    *,
    seconds: float = 1.0,
    n: int | None = None,
    log_events: Iterable[LogEvent] = (),
    verdicts: Iterable[Verdict] = (),
) -> ScenarioResult:
    """A scenario result over ``records``."""
    records = tuple(records)
    sent = [r.sent_ns for r in records] or [ns(0)]
    received = [r.received_ns for r in records] or [ns(0)]
    return ScenarioResult(
        scenario=name,
        n=n if n is not None else len([r for r in records if r.kind != "health"]),
        seconds=seconds,
        started_ns=min(sent),
        finished_ns=max(received),
        records=records,
        log_events=tuple(log_events),
        verdicts=tuple(verdicts),
    )


def profile(name: str, **changes: object) -> Profile:
    """A built-in profile, optionally changed."""
    base = builtin_profiles()[name]
    return base.replace(**changes) if changes else base


def result(
    name: str | Profile,
    scenarios: Iterable[ScenarioResult] = (),
    *,
    status: str = "ok",
    ready_seconds: float | None = 1.0,
    error: str | None = None,
) -> ProfileResult:
    """A profile's result (``name``: a built-in profile's name, or a profile)."""
    chosen = profile(name) if isinstance(name, str) else name
    return ProfileResult(
        profile=chosen,
        source=None,
        status=Status(status),
        ready_seconds=ready_seconds,
        error=error,
        scenarios=tuple(scenarios),
    )


def passed(name: str = "s") -> Verdict:
    """A verdict that held."""
    return Verdict(scenario=name, expectation="it held", observed="yes", passed=True, why="synthetic")


def failed(name: str = "s", expectation: str = "it held") -> Verdict:
    """A verdict that failed."""
    return Verdict(scenario=name, expectation=expectation, observed="no", passed=False, why="synthetic")


def app_result(
    name: str,
    backend: str,
    workers: int,
    makespans: Sequence[float],
    *,
    route: str = "gradio /echo",
    route_class: str = "runs_concurrently",
    errors: tuple[str, ...] = (),
    max_overlap: int = 1,
    serial_ratio: float = 1.0,
    stop_forced: bool = False,
    server_processes: int = 0,
) -> AppProfileResult:
    """A user app's result under one profile: one route whose repeats took ``makespans``, all of ``route_class``."""
    from launcher.probe.appprobe import AppProfileResult, RouteResult
    from launcher.probe.routes import ADVICE, BurstVerdict

    repeats = tuple(
        BurstVerdict(
            route_class=route_class,
            longest_stall_ms=0.0,
            blocked_ms=0.0,
            makespan_s=makespan,
            failed=len(errors),
            errors=errors,
            workers_used=1,
            max_overlap=max_overlap,
            serial_ratio=serial_ratio,
            cpu_share=0.0,
        )
        for makespan in makespans
    )
    result = RouteResult(
        route=route,
        request=route,
        route_class=route_class,
        blocks_event_loop=False,
        longest_stall_ms=0.0,
        advice=ADVICE[route_class],
        repeats=repeats,
    )
    return AppProfileResult(
        profile=name,
        same_as=(),
        backend=backend,
        workers=workers,
        ready_seconds=1.0,
        routes=(result,),
        stop_seconds=0.1,
        stop_forced=stop_forced,
        server_processes=server_processes,
    )
