"""The app every backend serves: the service, wrapped in the launcher's attribution middleware.

Workers import :func:`create_app` by name (``launcher.asgi:create_app``).
With attribution on (``LAUNCH_ATTRIBUTION=1``: ``launch probe``, ``launch
capacity``, or ``launch --profile NAME --attribution``) every HTTP response,
Gradio's own queue requests included, carries the pid of the worker process
that answered it and the server-side start and end of the request on the
machine-wide monotonic clock. That is how the probe sees which process served
each step of a demo click (queue join, event stream, result) without any help
from the application. It is a probing aid: a deployment does not expose worker
pids, so it is off by default.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from app.notify import send as notify_send
from app.settings import AppSettings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ATTRIBUTION_ENV = "LAUNCH_ATTRIBUTION"
PID_HEADER = "x-launch-pid"
"""The worker pid that answered (decimal)."""
TIMING_METRIC = "launch"
"""Name of our ``Server-Timing`` metric: ``launch;dur=MS;desc="START_NS-END_NS"``."""


def attribution_enabled(environ: MutableMapping[str, str] | None = None) -> bool:
    """Whether the served app should carry attribution headers."""
    return (os.environ if environ is None else environ).get(ATTRIBUTION_ENV, "") == "1"


class AttributionMiddleware:
    """Pure ASGI middleware: adds ``x-launch-pid`` and a ``Server-Timing`` entry to every HTTP response.

    Pure ASGI rather than Starlette's BaseHTTPMiddleware: it must not buffer
    streamed responses (Gradio's event stream) and must cost next to nothing.
    The end time is when the response starts (its headers are sent); for a
    stream that is when streaming begins.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one connection's scope, adding the headers to an HTTP response's start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.monotonic_ns()

        async def send_attributed(message: Message) -> None:
            if message["type"] == "http.response.start":
                end = time.monotonic_ns()
                headers = list(message.get("headers", ()))
                headers.append((PID_HEADER.encode(), str(os.getpid()).encode()))
                timing = f'{TIMING_METRIC};dur={(end - start) / 1e6:.3f};desc="{start}-{end}"'
                headers.append((b"server-timing", timing.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_attributed)


class DisconnectRelay:
    """Pure ASGI middleware: the server's ``receive()`` is read by one task per request, never by the app.

    A workaround for servers that break Gradio's event stream (see
    :mod:`launcher.probe.conformance`): Starlette's ``is_disconnected()`` awaits
    ``receive()`` in an already-cancelled scope on every pass of Gradio's loop,
    and a server whose own ``receive()`` does not survive that cancellation
    (gunicorn 27's asgi worker takes it for a closed connection; granian 2.8's
    future is cancelled faster than it resolves) ends or cancels the stream.
    Here the app's ``receive()`` answers from what the one reader task has
    read: the request's body messages in order, then ``http.disconnect`` for
    every call once the server reported it. A cancelled wait only cancels a
    wait on a plain asyncio event. The reader reads the body as it comes (no
    backpressure on uploads); it is cancelled when the app returns.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one HTTP scope with the relayed ``receive()``; other scopes pass through."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body: list[Message] = []
        disconnected = False
        arrived = asyncio.Event()

        async def read() -> None:
            nonlocal disconnected, arrived
            while not disconnected:
                message = await receive()
                if message["type"] == "http.disconnect":
                    disconnected = True
                else:
                    body.append(message)
                # Wake every waiter, then give later waiters a fresh event.
                arrived.set()
                arrived = asyncio.Event()

        async def relayed() -> Message:
            while True:
                if body:
                    return body.pop(0)
                if disconnected:
                    return {"type": "http.disconnect"}
                await arrived.wait()

        reader = asyncio.ensure_future(read())
        try:
            await self.app(scope, relayed, send)
        finally:
            # Not awaited: the app is done, and a server's future may take its time to honour the cancellation.
            reader.cancel()


def parse_timing(header: str | None) -> tuple[int, int] | None:
    """``(start_ns, end_ns)`` from a ``Server-Timing`` header holding our metric, else None."""
    if not header:
        return None
    for entry in header.split(","):
        name, _, params = entry.strip().partition(";")
        if name.strip() != TIMING_METRIC:
            continue
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "desc":
                start, _, end = value.strip('"').partition("-")
                if start.isdigit() and end.isdigit():
                    return int(start), int(end)
    return None


def wrap(app: ASGIApp, *, attribution: bool | None = None) -> ASGIApp:
    """``app`` with attribution headers when asked for (default: from ``LAUNCH_ATTRIBUTION``)."""
    if attribution is None:
        attribution = attribution_enabled()
    return AttributionMiddleware(app) if attribution else app


LAG_TICK_S = 0.01
"""The lag monitor's sleep: how late the loop wakes it from this sleep is the lag."""
LAG_REPORT_S = 0.1
"""How often each worker reports its lag (``X_LAUNCH_LAG=MAX_MS,TOTAL_MS``) over the notify channel."""
LAG_FIELD = "X_LAUNCH_LAG"
RELAY_LAG_ENV = "LAUNCH_RELAY_LAG"
"""Set by a probe that reads the launcher's notify socket: the launcher passes lag reports on to it."""


class WorkerReporter:
    """What a worker tells the launcher from its event loop: readiness, liveness pings, loop lag.

    The reference service reports READY and WATCHDOG itself (its lifespan loads
    the model first); for a user's app, which knows nothing of the launcher,
    :class:`SupervisedApp` does it here. The lag monitor runs for both, only
    with attribution on (a probing aid).
    """

    def __init__(self, settings: AppSettings, *, readiness: bool) -> None:
        self.settings = settings
        self.readiness = readiness
        self._tasks: list[asyncio.Task[None]] = []

    def notify(self, *, wait: bool = True, **fields: str | int | float) -> None:
        """Send one message to the launcher's control socket, if there is one (``wait=False``: drop it if full)."""
        if self.settings.control_socket:
            notify_send(self.settings.control_socket, {**fields, "WORKER": os.getpid()}, wait=wait)

    def started(self) -> None:
        """The app's startup completed: report ready, start pinging and watching the loop."""
        if self.readiness:
            self.notify(READY=1)
            if self.settings.watchdog_interval > 0:
                self._tasks.append(asyncio.create_task(self._watchdog(self.settings.watchdog_interval)))
        if self.settings.attribution and self.settings.control_socket:
            self._tasks.append(asyncio.create_task(self._lag_monitor()))

    def stop_tasks(self) -> None:
        """Stop pinging and watching the loop (idempotent): the launcher stops reading as it shuts down."""
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()

    def stopping(self) -> None:
        """The app has shut down: stop the tasks, report stopping."""
        self.stop_tasks()
        if self.readiness:
            self.notify(STOPPING=1)

    async def _watchdog(self, interval: float) -> None:
        # From the event loop on purpose: a blocked loop stops the pings.
        while True:
            self.notify(WATCHDOG=1, wait=False)
            await asyncio.sleep(interval)

    async def _lag_monitor(self) -> None:
        # Sleep a short tick and measure how late the loop wakes us: anything
        # past the tick is time the loop could not run callbacks (a blocking
        # call in an async handler, or the GIL held by other threads). The
        # worst wake and the sum over each report window go to the launcher;
        # a window that saw no lag is reported too, so "no lag" is a measurement.
        window_start = time.monotonic()
        worst = total = 0.0
        while True:
            before = time.monotonic()
            await asyncio.sleep(LAG_TICK_S)
            now = time.monotonic()
            lag = max(0.0, now - before - LAG_TICK_S)
            worst = max(worst, lag)
            total += lag
            if now - window_start >= LAG_REPORT_S:
                self.notify(wait=False, **{LAG_FIELD: f"{worst * 1e3:.1f},{total * 1e3:.1f}"})
                window_start, worst, total = now, 0.0, 0.0


class SupervisedApp:
    """Runs the app's lifespan and reports to the launcher around it (readiness, pings, lag).

    A user's app that does not speak the lifespan protocol (it raises on the
    ``lifespan`` scope before reading anything) is given one here, so it is
    still reported ready once the server runs it.
    """

    def __init__(self, app: ASGIApp, reporter: WorkerReporter) -> None:
        self.app = app
        self.reporter = reporter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass every scope through; watch the lifespan's startup and shutdown."""
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            received += 1
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                self.reporter.stop_tasks()
            return message

        async def watched_send(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                self.reporter.started()
            elif message["type"] == "lifespan.shutdown.complete":
                self.reporter.stopping()
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except Exception:
            if received:
                raise
            await self._own_lifespan(receive, send)

    async def _own_lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.reporter.started()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.reporter.stopping()
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_app() -> ASGIApp:
    """The app served by ``launch`` (the workers' factory): the reference service, or the user's ``--app``.

    The user's app comes from ``LAUNCH_APP`` (:mod:`launcher.userapp`), set by
    the launcher so that every spawned or forked worker imports it itself.
    """
    from launcher.userapp import AppSpec, load

    settings = AppSettings.from_env()
    user = AppSpec.from_env()
    if user is None:
        from app.main import create_app as create_reference_app

        served: ASGIApp = create_reference_app(settings)
    else:
        if settings.supervisor_pid is not None and settings.supervisor_pid != os.getpid():
            from app.runtime import die_with_parent

            # As the reference service does: a SIGKILLed launcher takes its workers with it.
            with contextlib.suppress(Exception):
                die_with_parent(settings.supervisor_pid)
        served = load(user)
    app = wrap(served, attribution=settings.attribution)
    if settings.disconnect_relay:
        app = DisconnectRelay(app)  # outside the attribution middleware: the whole app sees relayed receives only
    return SupervisedApp(app, WorkerReporter(settings, readiness=user is not None))
