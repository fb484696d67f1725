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

import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

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


def create_app() -> ASGIApp:
    """The reference service as served by ``launch`` (the workers' factory)."""
    from app.main import create_app as create_reference_app

    return wrap(create_reference_app())
