"""The open-loop load generator: requests sent on a precomputed schedule, never waiting for answers.

One event loop, one aiohttp session, one task per request: the dispatcher
sleeps until each request is due and starts its task, whatever the earlier
ones are doing. Every request opens its own connection (as separate users
would; the kernel spreads them over workers as it spreads real traffic), the
probe's policy in :mod:`launcher.probe.client`. Latency is taken from the
scheduled send time (:class:`launcher.capacity.model.Sample`), so a
dispatcher that falls behind charges its delay to the requests.

Bounded: a step holds at most :data:`~launcher.capacity.model.MAX_REQUESTS_PER_STEP`
requests, each with a timeout, and sending stops as soon as the step has
certainly missed its target (more requests over the target than its p99
allows), so an overloaded server is not handed a queue it would take minutes
to work off.

:func:`closed_loop` is the contrast the tests need: one connection, each
request sent when the previous one has answered -- the client that hides a
stall.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from launcher import interrupts
from launcher.capacity.model import Sample, StepResult, allowed_misses, schedule, summarize_step
from launcher.probe.client import error_class, header_attribution, raise_fd_limit

LEAD_NS = 20_000_000
"""The first request is due this long after the step is set up (the session exists, the loop is idle)."""
IDLE_POLL_S = 0.05


@dataclass(frozen=True, kw_only=True)
class StepRun:
    """What one open-loop step sent and got back."""

    samples: tuple[Sample, ...]
    started_ns: int
    """When the first request was due."""
    scheduled: int
    stopped_early: bool
    cpu_seconds: float
    """The generator's own CPU time (this process) during the step."""

    def summary(
        self,
        *,
        rate: float,
        seconds: float,
        target_s: float,
        worker_pids: Iterable[int] = (),
        gpu_busy: float | None = None,
        gpu_memory_mib: Mapping[str, float] | None = None,
    ) -> StepResult:
        """The step judged at ``target_s`` (:func:`launcher.capacity.model.summarize_step`)."""
        return summarize_step(
            self.samples,
            rate=rate,
            seconds=seconds,
            scheduled=self.scheduled,
            started_ns=self.started_ns,
            target_s=target_s,
            stopped_early=self.stopped_early,
            worker_pids=worker_pids,
            gpu_busy=gpu_busy,
            gpu_memory_mib=gpu_memory_mib,
        )


def _attribution(raw: bytes) -> dict[str, int]:
    try:
        body: Any = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(body, dict):
        return {}
    return {k: body[k] for k in ("pid", "start_ns", "end_ns") if isinstance(body.get(k), int)}


async def _request(session: aiohttp.ClientSession, url: str, *, index: int, due_ns: int, timeout: float) -> Sample:
    sent = time.monotonic_ns()
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            raw = await response.read()
            received = time.monotonic_ns()
            return Sample(
                index=index,
                scheduled_ns=due_ns,
                sent_ns=sent,
                received_ns=received,
                status=response.status,
                error=None if response.status < 400 else f"http_{response.status}",
                # The body's (the reference service's work interval), else the launcher's headers (any app).
                **(_attribution(raw) or header_attribution(response.headers)),
            )
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        return Sample(
            index=index, scheduled_ns=due_ns, sent_ns=sent, received_ns=time.monotonic_ns(), error=error_class(exc)
        )


async def open_loop(
    url: str,
    rate: float,
    seconds: float,
    *,
    timeout: float,
    target_s: float | None = None,
) -> StepRun:
    """Send ``GET url`` at ``rate``/s for ``seconds`` on a fixed schedule; every sample, in schedule order.

    With ``target_s``, sending stops once more requests than the p99 allows
    are over the target (answered late, failed, or still unanswered past it).
    """
    offsets = schedule(rate, seconds)
    raise_fd_limit(2 * len(offsets) + 256)
    connector = aiohttp.TCPConnector(force_close=True, limit=0)
    budget = allowed_misses(len(offsets)) if target_s is not None else None
    target_ns = round(target_s * 1e9) if target_s is not None else 0
    samples: list[Sample] = []
    outstanding: dict[int, int] = {}
    """index -> due time of requests not answered yet, in send (= due) order."""
    misses = 0
    stopped = False

    def done(task: asyncio.Task[Sample]) -> None:
        nonlocal misses
        if task.cancelled():
            return
        sample = task.result()
        samples.append(sample)
        outstanding.pop(sample.index, None)
        if not sample.ok or sample.received_ns - sample.scheduled_ns > target_ns:
            misses += 1

    def certainly_missed(now: int) -> bool:
        if budget is None:
            return False
        overdue = 0
        for due in outstanding.values():
            if now - due <= target_ns:
                break
            overdue += 1
        return misses + overdue > budget

    tasks: list[asyncio.Task[Sample]] = []
    cpu_before = time.process_time()
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.monotonic_ns() + LEAD_NS
        for index, offset in enumerate(offsets):
            due = started + round(offset * 1e9)
            await _until(due)
            if certainly_missed(time.monotonic_ns()):
                stopped = True
                break
            outstanding[index] = due
            task = asyncio.create_task(_request(session, url, index=index, due_ns=due, timeout=timeout))
            task.add_done_callback(done)
            tasks.append(task)
            if index == 0:
                await interrupts.areached("step")  # requests in flight: where a test may hold a step
        if tasks:
            await asyncio.wait(tasks)
    return StepRun(
        samples=tuple(sorted(samples, key=lambda s: s.index)),
        started_ns=started,
        scheduled=len(offsets),
        stopped_early=stopped,
        cpu_seconds=time.process_time() - cpu_before,
    )


async def _until(due_ns: int) -> None:
    """Sleep until the monotonic clock reaches ``due_ns`` (at once if it already has)."""
    delay = (due_ns - time.monotonic_ns()) / 1e9
    if delay > 0:
        await asyncio.sleep(delay)


async def closed_loop(url: str, rate: float, seconds: float, *, timeout: float) -> list[Sample]:
    """The contrast: one kept-alive connection, each request sent when it is due AND the previous one answered.

    Samples keep the due time too, but a closed-loop tool reports
    :attr:`Sample.latency_from_sent_s`: a stall delays one request, and the
    ones that would have arrived during it are never sent while it lasts.
    """
    offsets = schedule(rate, seconds)
    samples: list[Sample] = []
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.monotonic_ns() + LEAD_NS
        for index, offset in enumerate(offsets):
            due = started + round(offset * 1e9)
            await _until(due)
            samples.append(await _request(session, url, index=index, due_ns=due, timeout=timeout))
    return samples


async def wait_idle(base_url: str, *, workers: int, timeout: float) -> bool:
    """Poll ``/health`` (a fresh connection each time) until no worker has a request in a handler.

    After a step that missed, the server may still be working off requests
    the client gave up on; the next step must not start on that queue. Done
    after ``3 x workers`` answers in a row report ``in_flight == 0`` (a fresh
    connection reaches a random worker); False if ``timeout`` passed first.
    """
    await interrupts.areached("idle")
    needed = 3 * max(1, workers)
    quiet = 0
    deadline = time.monotonic() + timeout
    connector = aiohttp.TCPConnector(force_close=True, limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        while time.monotonic() < deadline:
            try:
                left = max(0.1, deadline - time.monotonic())
                async with session.get(f"{base_url}/health", timeout=aiohttp.ClientTimeout(total=left)) as response:
                    body = await response.json(content_type=None)
                busy = isinstance(body, dict) and body.get("in_flight") not in (0, None)
            except (TimeoutError, aiohttp.ClientError, OSError, ValueError):
                busy = True
            quiet = 0 if busy else quiet + 1
            if quiet >= needed:
                return True
            await asyncio.sleep(IDLE_POLL_S)
    return False


def settle(
    base_url: str,
    run: StepRun,
    *,
    workers: int,
    in_flight_known: bool,
    request_timeout: float,
    idle_timeout: float,
) -> str | None:
    """Before the next step: wait until the server has worked off what the last one left; a note when it had to.

    ``in_flight_known``: the server is the reference service, whose ``/health`` counts the requests in its
    handlers (:func:`wait_idle`). A user's app has no such count: a request the client gave up on may still
    hold a worker for as long again as the client waited at most, so that long is waited after a step that
    abandoned any. KeyboardInterrupt passes (:func:`launcher.interrupts.run`).
    """
    if in_flight_known:
        if not interrupts.run(wait_idle(base_url, workers=workers, timeout=idle_timeout)):
            return f"still busy {idle_timeout:g} s after the step; going on"
        return None
    abandoned = sum(1 for sample in run.samples if sample.status is None)
    if not abandoned:
        return None
    wait = min(request_timeout, idle_timeout)
    interrupts.run(asyncio.sleep(wait))
    return f"{abandoned} request(s) abandoned; waited {wait:g} s for the app to finish them"
