"""The original write-up's claims, judged on a run's evidence.

Each judge looks for the profiles and scenarios that bear on its claim and
returns CONFIRMED, REFUTED, DEPENDS (on what, with the numbers) or UNTESTED
when the run did not include what the claim needs.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence

from app.settings import HandlerMode
from launcher.probe import metrics
from launcher.probe.expectations import REL_TOLERANCE
from launcher.probe.model import (
    WORK_KINDS,
    Claim,
    ClaimVerdict,
    Kind,
    ProfileResult,
    Recommendation,
    RequestRecord,
    ScenarioResult,
)
from launcher.probe.recommend import backend_rank

CLAIMS: tuple[str, ...] = (
    "The demo's concurrency_limit applies only to demo button clicks, not to API calls.",
    "Handlers run on threads, so concurrent CPU work (button2) slows every request down.",
    "Even with one worker, concurrent requests are received and processed in parallel.",
    "Making every demo and API function async def stops API calls from running while a demo job runs.",
    "With async def, an API call sent after a demo click can be served before it.",
    "With async def, requests wait inside the server, so clients can time out.",
    "uvicorn with 3 workers runs three CPU requests in about the time of one.",
    "gunicorn with UvicornWorker and 3 workers does the same.",
    "gunicorn with async def handlers under concurrent requests often logs [CRITICAL] WORKER TIMEOUT.",
    "Final advice for serving an AI model: concurrency_limit=1, async def everywhere, one uvicorn worker.",
    "With async def everywhere, the demo page cannot show in advance how long the queue is.",
    "When an async function is called without await, simultaneous demo and API calls fail with "
    "TypeError: 'coroutine' object is not iterable.",
)

Found = tuple[ProfileResult, ScenarioResult]


def _find(
    results: Sequence[ProfileResult],
    scenario: str,
    *,
    mode: HandlerMode | None = None,
    workers: int | None = None,
    backend: str | None = None,
) -> list[Found]:
    found: list[Found] = []
    for result in results:
        p = result.profile
        if mode is not None and p.handler_mode != mode:
            continue
        if workers is not None and p.workers != workers:
            continue
        if backend is not None and p.backend != backend:
            continue
        found.extend((result, s) for s in result.scenarios if s.scenario == scenario)
    return found


def _durations(records: Sequence[RequestRecord]) -> list[float]:
    return [((r.end_ns or 0) - (r.start_ns or 0)) / 1e9 for r in metrics.work_records(records)]


def _overlaps(a: RequestRecord, b: RequestRecord) -> bool:
    (s1, e1), (s2, e2) = metrics.interval(a), metrics.interval(b)
    return s1 < e2 - metrics.OVERLAP_EPSILON_NS and s2 < e1 - metrics.OVERLAP_EPSILON_NS


def _claim1(results: Sequence[ProfileResult], cores: int) -> tuple[ClaimVerdict, str]:
    found = _find(results, "mixed", mode=HandlerMode.SYNC, workers=1)
    if not found:
        return ClaimVerdict.UNTESTED, "needs the mixed scenario on a 1-worker sync profile"
    result, scenario = found[0]
    demo_overlap = max(
        metrics.overlap_by_pid(metrics.work_records(scenario.records, kinds=(Kind.DEMO,))).values(), default=0
    )
    api = metrics.work_records(scenario.records, kinds=(Kind.API,))
    beside = sum(1 for a in api for d in metrics.work_records(scenario.records, kinds=(Kind.DEMO,)) if _overlaps(a, d))
    limit = result.profile.concurrency_limit
    ok = demo_overlap <= limit and beside > 0
    return (ClaimVerdict.CONFIRMED if ok else ClaimVerdict.REFUTED), (
        f"{result.name}: demo events overlapped at most {demo_overlap} (limit {limit}); "
        f"{len(api)} API calls ran beside demo events {beside} time(s). In async and offload modes API calls "
        "also wait, but for the event loop or the limiter, not for concurrency_limit."
    )


def _claim2(results: Sequence[ProfileResult], cores: int) -> tuple[ClaimVerdict, str]:
    found = _find(results, "cpu", mode=HandlerMode.SYNC, workers=1)
    if not found or found[0][1].n < 2:
        return ClaimVerdict.UNTESTED, "needs the cpu scenario (N >= 2) on a 1-worker sync profile"
    result, scenario = found[0]
    durations = _durations(scenario.records)
    mean = sum(durations) / len(durations) if durations else 0.0
    ratio = mean / scenario.unit_s if scenario.unit_s else 0.0
    ok = ratio >= scenario.n * (1 - REL_TOLERANCE)
    return (ClaimVerdict.CONFIRMED if ok else ClaimVerdict.REFUTED), (
        f"{result.name}: {scenario.n} concurrent CPU requests of {scenario.unit_s:.2f} CPU-s each took "
        f"{mean:.2f}s on average ({ratio:.1f}x): threads share one GIL. Holds for sync handlers; "
        "async and offload run them one after another instead."
    )


def _runs_in_parallel(result: ProfileResult) -> bool:
    """Whether one worker of ``result`` runs concurrent blocking requests side by side, by construction.

    sync: anyio's thread pool (40 threads) runs them at once; async: the blocking work runs on the event loop,
    one at a time; offload: the per-process CapacityLimiter admits ``limiter`` at once.
    """
    mode = result.profile.handler_mode
    return mode == HandlerMode.SYNC or (mode == HandlerMode.OFFLOAD and result.profile.limiter > 1)


def _structural(outcomes: set[bool]) -> ClaimVerdict:
    """CONFIRMED or REFUTED when every set-up found says the same by construction; DEPENDS when they differ."""
    if len(outcomes) > 1:
        return ClaimVerdict.DEPENDS
    return ClaimVerdict.CONFIRMED if True in outcomes else ClaimVerdict.REFUTED


def _claim3(results: Sequence[ProfileResult], cores: int) -> tuple[ClaimVerdict, str]:
    # Judged by the handler mode's structure (the expectation model holds each profile to it in every repeat);
    # the observed overlaps are the illustration.
    parts: list[str] = []
    outcomes: set[bool] = set()
    for mode in (HandlerMode.SYNC, HandlerMode.ASYNC, HandlerMode.OFFLOAD):
        found = _find(results, "sleep", mode=mode, workers=1)
        if not found:
            continue
        result, scenario = found[0]
        outcomes.add(_runs_in_parallel(result))
        overlap = max(metrics.overlap_by_pid(scenario.records).values(), default=0)
        parts.append(f"{result.name}: {overlap} of {scenario.n} sleeps ran at once")
    if not parts:
        return ClaimVerdict.UNTESTED, "needs the sleep scenario on 1-worker profiles"
    return _structural(outcomes), (
        "on the handler mode: "
        + "; ".join(parts)
        + ". By construction: sync handlers run in a thread pool (parallel), async ones on the event loop (one at "
        "a time), offloaded ones through a limiter (as many at once as it admits). CPU work is concurrent but not "
        "parallel (GIL)."
    )


def _claim4(results: Sequence[ProfileResult], cores: int) -> tuple[ClaimVerdict, str]:
    # By structure: with one worker, the demo job's blocking async work holds the only event loop, so no API call
    # runs meanwhile; with several, an API call can reach another worker's loop -- whether one did in this run is
    # the kernel's spread of connections, so the count only illustrates.
    parts: list[str] = []
    outcomes: set[bool] = set()
    for workers in (1, 3):
        for result, scenario in _find(results, "mixed", mode=HandlerMode.ASYNC, workers=workers)[:1]:
            demo = metrics.work_records(scenario.records, kinds=(Kind.DEMO,))
            api = metrics.work_records(scenario.records, kinds=(Kind.API,))
            beside = sum(1 for a in api for d in demo if _overlaps(a, d))
            outcomes.add(result.profile.workers == 1)
            parts.append(f"{result.name}: API calls ran during demo jobs {beside} time(s)")
    if not parts:
        return ClaimVerdict.UNTESTED, "needs the mixed scenario on async profiles"
    return _structural(outcomes), (
        "; ".join(parts) + ". By construction: with one worker async def does serialize them -- by blocking the "
        "whole event loop, /health included; with several workers an API call can run on another worker "
        "meanwhile (whether it did is the kernel's spread of connections: the counts only illustrate)."
    )


def _claim5(results: Sequence[ProfileResult], cores: int) -> tuple[ClaimVerdict, str]:
    found = _find(results, "mixed", mode=HandlerMode.ASYNC, workers=1)
    if not found:
        return ClaimVerdict.UNTESTED, "needs the mixed scenario on a 1-worker async profile"
    overtakes = 0
    total = 0
    for _result, scenario in found:
        demo = metrics.work_records(scenario.records, kinds=(Kind.DEMO,))
        api = metrics.work_records(scenario.records, kinds=(Kind.API,))
        total += len(api)
        overtakes += sum(
            1 for a in api if any(d.sent_ns < a.sent_ns and (a.start_ns or 0) < (d.start_ns or 0) for d in demo)
        )
    name = found[0][0].name
    if overtakes:
        return ClaimVerdict.CONFIRMED, (
            f"{name}: {overtakes} of {total} API calls sent after a demo click started before it: the API request "
            "enters the event loop directly while the click waits in Gradio's queue."
        )
    return (
        ClaimVerdict.DEPENDS,
        f"{name}: not observed in {total} API calls; it needs the click still queued when the call arrives.",
    )


def _claim6(results: Sequence[ProfileResult], cores: int) -> tuple[ClaimVerdict, str]:
    found = _find(results, "sleep", mode=HandlerMode.ASYNC, workers=1) + _find(
        results, "mixed", mode=HandlerMode.ASYNC, workers=1
    )
    if not found:
        return ClaimVerdict.UNTESTED, "needs the sleep or mixed scenario on a 1-worker async profile"
    result, scenario = max(
        found, key=lambda f: max((r.latency_s for r in f[1].records if r.kind != Kind.HEALTH), default=0)
    )
    latencies = [r.latency_s for r in scenario.records if r.kind in WORK_KINDS]
    worst = max(latencies, default=0.0)
    waited = worst - scenario.seconds
    health = metrics.health_latencies(scenario.records)
    ok = waited >= scenario.seconds * (1 - REL_TOLERANCE)
    return (ClaimVerdict.CONFIRMED if ok else ClaimVerdict.REFUTED), (
        f"{result.name} ({scenario.scenario}): {scenario.seconds:g}s of work took up to {worst:.2f}s for the client "
        f"({waited:.2f}s waiting inside the server); /health waited up to {max(health, default=0):.2f}s. A client "
        "timeout shorter than the queue behind a blocked loop fails."
    )


def _parallel_claim(results: Sequence[ProfileResult], cores: int, backend: str) -> tuple[ClaimVerdict, str]:
    """Parallel efficiency of a 3-worker CPU burst: CPU-seconds / (makespan x min(workers used, cores)).

    Judged on its substance: parallelism across worker processes is real up
    to min(workers, cores). On a machine with fewer than 3 cores the claim
    as stated ("three in the time of one") cannot be shown; that is a
    dependency on the machine, named and measured, never a refutation.
    """
    found = _find(results, "cpu", workers=3, backend=backend)
    if not found:
        return ClaimVerdict.UNTESTED, f"needs the cpu scenario on a 3-worker {backend} profile"
    efficiencies: list[float] = []
    speedups: list[float] = []
    rows: list[str] = []
    for _result, scenario in found:
        span = metrics.span_s(scenario.records)
        cpu = sum(scenario.cpu_seconds.values()) or scenario.unit_s * len(metrics.work_records(scenario.records))
        used = len(metrics.counts_by_pid(scenario.records))
        parallel = max(1, min(used, cores))
        if span <= 0:
            continue
        efficiencies.append(cpu / (span * parallel))
        speedups.append(cpu / span)
        per_worker = ", ".join(f"{s:.2f}" for s in sorted(scenario.cpu_seconds.values(), reverse=True))
        rows.append(f"{cpu:.2f} CPU-s in {span:.2f}s on {used} worker(s) (CPU-s per worker {per_worker or '?'})")
    if not efficiencies:
        return ClaimVerdict.UNTESTED, f"no attributed CPU work on a 3-worker {backend} profile"
    eff, speedup = statistics.median(efficiencies), statistics.median(speedups)
    spread = f"{min(efficiencies):.0%}-{max(efficiencies):.0%}" if len(efficiencies) > 1 else f"{eff:.0%}"
    evidence = (
        f"{found[0][0].name}: parallel efficiency {eff:.0%} (over {len(efficiencies)} repeat(s): {spread}) of "
        f"min(workers used, cores); speed-up {speedup:.2f}x over one process. " + "; ".join(rows)
    )
    concurrent = max(
        (metrics.max_overlap(metrics.interval(r) for r in metrics.work_records(sc.records)) for _, sc in found),
        default=0,
    )
    pids_used = max((len(metrics.counts_by_pid(sc.records)) for _, sc in found), default=0)
    # The figures depend on the kernel's spread of connections over the workers and on other load; the verdict
    # follows from the structure: three processes, three GILs, as many CPU requests at once as there are cores.
    if pids_used < 2:
        seen = " This run: the kernel put every connection on one worker, so nothing ran in parallel."
    elif concurrent < 2:
        seen = " This run: the worker processes never ran their CPU work at the same time."
    else:
        seen = f" This run: {concurrent} worker processes ran CPU work at the same time."
    if cores >= 3:
        return ClaimVerdict.CONFIRMED, evidence + (
            f". By construction: 3 worker processes on {cores} cores run three CPU requests at once when the "
            "kernel gives each worker one connection." + seen
        )
    return ClaimVerdict.DEPENDS, evidence + (
        f". On the machine: this machine has {cores} core(s): parallelism across worker processes holds up to "
        f"min(3, cores) = {min(3, cores)}; three requests in the time of one needs >= 3 cores, and the kernel "
        "putting one connection on each worker." + seen
    )


def _claim7(results: Sequence[ProfileResult], cores: int) -> tuple[ClaimVerdict, str]:
    return _parallel_claim(results, cores, "uvicorn")


def _claim8(results: Sequence[ProfileResult], cores: int) -> tuple[ClaimVerdict, str]:
    return _parallel_claim(results, cores, "gunicorn")


def _claim9(results: Sequence[ProfileResult], cores: int) -> tuple[ClaimVerdict, str]:
    gunicorn_async = [
        r for r in results if r.profile.backend == "gunicorn" and r.profile.handler_mode == HandlerMode.ASYNC
    ]
    if not gunicorn_async:
        return ClaimVerdict.UNTESTED, "needs a gunicorn async profile"
    burst_timeouts = 0
    timeout_kills = 0
    timeout_runs = 0
    for result in gunicorn_async:
        for scenario in result.scenarios:
            count = len([e for e in scenario.log_events if e.kind == "worker_timeout"])
            if scenario.scenario == "timeout":
                timeout_runs += 1
                timeout_kills += count
            else:
                burst_timeouts += count
    timeout_s = gunicorn_async[0].profile.timeout
    if timeout_runs == 0 and burst_timeouts == 0:
        return ClaimVerdict.DEPENDS, (
            f"no WORKER TIMEOUT in short bursts; it needs a loop blocked past timeout={timeout_s:g}s "
            "(run the timeout scenario)"
        )
    return ClaimVerdict.DEPENDS, (
        f"WORKER TIMEOUT {timeout_kills} time(s) in {timeout_runs} timeout scenario(s) (one request blocking "
        f"past {timeout_s:g}s), {burst_timeouts} time(s) in ordinary bursts: it happens exactly when one worker's "
        "event loop stays blocked longer than the timeout, e.g. 3 x 10 s requests queued on one worker."
    )


def _claim10(
    results: Sequence[ProfileResult], cores: int, recommendation: Recommendation | None = None
) -> tuple[ClaimVerdict, str]:
    advised = next((r for r in results if r.name == "uvicorn-1-async"), None)
    if advised is None:
        return ClaimVerdict.UNTESTED, "needs uvicorn-1-async in the run"
    failed = [v for v in advised.verdicts if not v.passed]
    health = max((max(metrics.health_latencies(s.records), default=0.0) for s in advised.scenarios), default=0.0)
    rec = recommendation.profile.name if recommendation else "none"
    if recommendation is not None and rec == "uvicorn-1-async":
        return ClaimVerdict.CONFIRMED, "the probe recommends the same profile"
    return ClaimVerdict.REFUTED, (
        f"uvicorn-1-async serializes everything by blocking its event loop: /health waited up to {health:.2f}s"
        + (f", {len(failed)} expectation(s) failed" if failed else "")
        + f". Recommended instead: {rec}. concurrency_limit=1 and one model per worker are sound; the way to "
        "serialize model access is a limiter (offload) or a lock, not a blocked event loop."
    )


def _first_status_delays(scenario: ScenarioResult) -> list[float]:
    """Seconds from send to the first queue-status message, for each demo click that waited in the queue."""
    return [
        (r.queue[0].at_ns - r.sent_ns) / 1e9
        for r in scenario.records
        if r.kind == Kind.DEMO and r.queue and r.queue[0].at_ns >= r.sent_ns
    ]


def _status_in_advance(scenario: ScenarioResult) -> tuple[int, int]:
    """How many waiting demo clicks got their first queue status while a job ran, of how many.

    "While a job ran": before the first work on their worker ended.
    """
    ends: dict[int, int] = {}
    for work in metrics.work_records(scenario.records):
        if work.pid is not None:
            ends[work.pid] = min(ends.get(work.pid, work.end_ns or 0), work.end_ns or 0)
    early = total = 0
    for record in scenario.records:
        if record.kind != Kind.DEMO or not record.queue:
            continue
        pid = record.pid if record.pid is not None else next(iter(record.steps.values()), None)
        if pid is None or pid not in ends:
            continue
        total += 1
        early += record.queue[0].at_ns < ends[pid]
    return early, total


def _claim11(results: Sequence[ProfileResult], cores: int) -> tuple[ClaimVerdict, str]:
    parts: list[str] = []
    shown: dict[HandlerMode, tuple[int, int]] = {}
    for mode in (HandlerMode.ASYNC, HandlerMode.SYNC, HandlerMode.OFFLOAD):
        found = _find(results, "mixed", mode=mode, workers=1)
        counts = [_status_in_advance(s) for _, s in found]
        early, total = sum(c[0] for c in counts), sum(c[1] for c in counts)
        if not total:
            continue
        shown[mode] = (early, total)
        delays = [d for _, s in found for d in _first_status_delays(s)]
        parts.append(
            f"{mode}: {early} of {total} waiting clicks got their queue position while a job ran "
            f"(first status {statistics.median(delays) * 1000:.0f} ms after the click, median)"
        )
    if HandlerMode.ASYNC not in shown:
        return (
            ClaimVerdict.UNTESTED,
            "needs the mixed scenario on a 1-worker async profile with clicks waiting in the queue",
        )
    evidence = "; ".join(parts) + (
        ". Gradio sends queue position and ETA from the event loop; an async handler doing blocking work holds "
        "that loop, so waiting users learn their place only when the running job ends"
    )
    if shown[HandlerMode.ASYNC][0] == 0:
        return ClaimVerdict.CONFIRMED, evidence + " (true of async only: sync and offload show it in advance)."
    return ClaimVerdict.REFUTED, evidence + "."


def _claim12(results: Sequence[ProfileResult], cores: int) -> tuple[ClaimVerdict, str]:
    found = [(r, s) for r in results for s in r.scenarios if s.scenario == "noawait"]
    if not found:
        return ClaimVerdict.UNTESTED, "needs the noawait scenario (the lab route) on a 1-worker profile"
    # A stable choice whichever order the run had: recommend's backend order, which puts the servers whose own
    # defects fail demo clicks today (gunicorn-asgi, granian) after those that do not; then the name.
    result, scenario = min(found, key=lambda f: (backend_rank(f[0].profile.backend), f[0].name))
    by_index = {r.index: r for r in scenario.records if r.kind != Kind.HEALTH}
    lone, demo, api = by_index.get(0), by_index.get(1), by_index.get(2)

    def outcome(record: RequestRecord | None) -> str:
        if record is None:
            return "not sent"
        if record.ok:
            return "succeeded"
        return record.error or f"HTTP {record.status}"

    message = scenario.note or "no exception line in the server log"
    evidence = (
        f"{result.name}, route returning an un-awaited coroutine: a lone API call {outcome(lone)}; "
        f"then a demo click {outcome(demo)} and an API call {outcome(api)} at once. Server log: {message}"
    )
    together_failed = demo is not None and api is not None and not demo.ok and not api.ok
    if together_failed and "'coroutine' object is not iterable" in message:
        nuance = (
            " The error comes from the missing await alone: a lone call fails the same way, simultaneity plays no part."
            if lone is not None and not lone.ok
            else ""
        )
        return ClaimVerdict.CONFIRMED, evidence + "." + nuance
    if together_failed:
        return ClaimVerdict.DEPENDS, evidence + ". The calls fail, with another error than the write-up names."
    return ClaimVerdict.REFUTED, evidence + ". The calls did not fail."


_JUDGES: tuple[Callable[[Sequence[ProfileResult], int], tuple[ClaimVerdict, str]], ...] = (
    _claim1,
    _claim2,
    _claim3,
    _claim4,
    _claim5,
    _claim6,
    _claim7,
    _claim8,
    _claim9,
    _claim11,
    _claim12,
)


def judge_claims(results: Sequence[ProfileResult], *, cores: int, recommendation: Recommendation | None) -> list[Claim]:
    """A verdict for each of the write-up's twelve claims (claim 10 against the probe's own recommendation)."""
    claims = []
    judges = (*_JUDGES[:9], lambda r, c: _claim10(r, c, recommendation), *_JUDGES[9:])
    for number, (text, judge) in enumerate(zip(CLAIMS, judges, strict=True), start=1):
        verdict, evidence = judge(results, cores)
        claims.append(Claim(number=number, text=text, verdict=verdict, evidence=evidence, summary=summarize(evidence)))
    return claims


def summarize(evidence: str) -> str:
    """The evidence's first clause, for the default output (the whole evidence is in --details, the JSON and HTML)."""
    return evidence.split(". ", 1)[0].split("; ", 1)[0].rstrip(".")
