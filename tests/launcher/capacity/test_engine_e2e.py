"""The open-loop generator against a real HTTP server on 127.0.0.1 that stalls: coordinated omission, shown."""

from __future__ import annotations

import asyncio
import math
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import uvicorn

from launcher.capacity.engine import closed_loop, open_loop
from launcher.capacity.model import summarize_step
from launcher.probe.metrics import percentile

STALL_S = 2.0
RATE = 100.0
STEP_S = 5.0
STALL_AFTER_S = 1.5


class StallingApp:
    """A bare ASGI app answering ``{"ok": true}``; once armed, the first request after the instant blocks its loop."""

    def __init__(self) -> None:
        self.stall_at = math.inf
        self.stalls = 0

    def arm(self, after_s: float) -> None:
        self.stall_at = time.monotonic() + after_s

    async def __call__(
        self, scope: dict[str, Any], receive: Callable[[], Awaitable[Any]], send: Callable[[Any], Awaitable[None]]
    ) -> None:
        if scope["type"] != "http":
            return
        if time.monotonic() >= self.stall_at:
            self.stall_at = math.inf
            self.stalls += 1
            # The event loop itself blocks: the whole server stops answering, as a
            # blocking handler, a GC pause or a stopped VM would make it.
            time.sleep(STALL_S)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b'{"ok": true}'})


@pytest.fixture(scope="module")
def stalling() -> Iterator[tuple[StallingApp, str]]:
    app = StallingApp()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started
    yield app, f"http://127.0.0.1:{sock.getsockname()[1]}/"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.mark.e2e
def test_a_stall_shows_in_the_open_loop_p99_and_hides_from_a_closed_loop(stalling: tuple[StallingApp, str]) -> None:
    app, url = stalling

    app.arm(STALL_AFTER_S)
    run = asyncio.run(open_loop(url, RATE, STEP_S, timeout=10))
    step = summarize_step(
        run.samples, rate=RATE, seconds=STEP_S, scheduled=run.scheduled, started_ns=run.started_ns, target_s=0.5
    )

    app.arm(STALL_AFTER_S)
    closed = asyncio.run(closed_loop(url, RATE, STEP_S, timeout=10))
    closed_ok = [s for s in closed if s.ok]
    closed_p99 = percentile([s.latency_from_sent_s for s in closed_ok], 99)
    closed_max = max(s.latency_from_sent_s for s in closed_ok)

    print(
        f"\nopen loop, from schedule: p50 {step.p50_s:.3f} s p99 {step.p99_s:.3f} s ({step.sent} sent);"
        f" closed loop, from send: p99 {closed_p99:.3f} s, max {closed_max:.3f} s ({len(closed_ok)} answers)"
    )
    assert app.stalls == 2
    assert step.errors == 0 and step.sent == run.scheduled == 500
    # Every request due during the stall waited for its end: about 40 % of the step.
    assert step.p99_s is not None and step.p99_s >= 0.9 * STALL_S
    assert step.p90_s is not None and step.p90_s >= 0.5
    assert not step.passed
    # The closed-loop client saw the same stall once (one request), and reports a p99 that hides it.
    assert closed_max >= 0.9 * STALL_S
    assert closed_p99 is not None and closed_p99 < 0.25
    # The open loop's own lateness is not what it measured: it kept sending on time through the stall.
    assert step.send_lag_p99_s is not None and step.send_lag_p99_s < 0.25
