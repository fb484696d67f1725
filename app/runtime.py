"""Per-process state of the service and the three handler modes.

One :class:`Runtime` lives in each worker. :meth:`Runtime.handler` turns a
job (a function that validates its arguments and returns the blocking work as
a thunk) into a handler of the configured mode, so the API routes and the demo
buttons run their work the same way.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import inspect
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from app.notify import send
from app.pipeline import NO_MODEL, ImageModel
from app.settings import AppSettings, HandlerMode
from app.work import Attribution, InFlight, attributed, calibrate_cpu_rate

R = TypeVar("R")
Out = TypeVar("Out")

_PR_SET_PDEATHSIG = 1


def die_with_parent(supervisor_pid: int) -> None:
    """Ask the kernel to SIGKILL this worker when its parent (the launcher) dies.

    A SIGKILLed launcher cannot stop its workers itself; without this they
    would keep the port and the model's memory. If the parent is already gone
    by the time we get here, exit at once.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: best effort only
        return
    if os.getppid() != supervisor_pid:
        os._exit(1)


def _exit_now() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


class Runtime:
    """Settings, counters, the shared limiter and the model of one worker process."""

    def __init__(self, settings: AppSettings) -> None:
        self.settings = settings
        self.in_flight = InFlight()
        self.model: ImageModel | None = None
        self.cpu_rate: float = settings.cpu_rate or 0.0
        self.started_ns: int | None = None
        self._limiter: anyio.CapacityLimiter | None = None
        if settings.supervisor_pid is not None and settings.supervisor_pid != os.getpid():
            die_with_parent(settings.supervisor_pid)

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        """The per-process limiter shared by the demo and the API in ``offload`` mode."""
        if self._limiter is None:
            # Created lazily: anyio needs a running event loop to build one.
            self._limiter = anyio.CapacityLimiter(self.settings.limiter)
        return self._limiter

    def notify(self, *, wait: bool = True, **fields: str | int | float) -> None:
        """Report to the launcher's control socket, if there is one (``wait=False``: drop it when full)."""
        if self.settings.control_socket:
            send(self.settings.control_socket, {**fields, "WORKER": os.getpid()}, wait=wait)

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Any) -> AsyncIterator[None]:
        """Calibrate, load the model, report readiness; on the way out report stopping."""
        if not self.cpu_rate:
            self.cpu_rate = calibrate_cpu_rate()
        if self.settings.model != NO_MODEL:
            self.model = ImageModel.load(self.settings.model)
        _ = self.limiter
        self.started_ns = time.monotonic_ns()
        self.notify(READY=1)
        watchdog: asyncio.Task[None] | None = None
        if self.settings.watchdog_interval > 0:
            watchdog = asyncio.create_task(self._watchdog(self.settings.watchdog_interval))
        try:
            yield
        finally:
            if watchdog is not None:
                watchdog.cancel()
            self.notify(STOPPING=1)
        if self.settings.supervisor_pid not in (None, os.getpid()):
            # A worker process after a clean shutdown: skip the interpreter's
            # teardown of torch, diffusers and Gradio (2-3 s per worker here,
            # more on a busy machine) once exit handlers have run.
            atexit.register(_exit_now)

    async def _watchdog(self, interval: float) -> None:
        # Sent from the event loop on purpose: a loop blocked by an async
        # handler stops the pings, which is what the watchdog must catch.
        while True:
            self.notify(WATCHDOG=1, wait=False)
            await asyncio.sleep(interval)

    def handler(
        self,
        job: Callable[..., Callable[[], R]],
        *,
        work: str,
        kind: str,
        finish: Callable[[R, Attribution], Out],
    ) -> Callable[..., Out] | Callable[..., Awaitable[Out]]:
        """A handler of this runtime's mode with ``job``'s signature.

        ``job`` receives the request's arguments and returns the blocking work
        as a thunk; ``finish`` turns its result and attribution into the
        response. FastAPI and Gradio read the signature, so it is copied.
        """
        mode = self.settings.mode
        in_flight = self.in_flight

        def run(thunk: Callable[[], R]) -> tuple[R, Attribution]:
            return attributed(thunk, work=work, kind=kind, mode=mode.value, in_flight=in_flight)

        result: Callable[..., Any]
        if mode is HandlerMode.SYNC:

            def sync_handler(*args: Any, **kwargs: Any) -> Out:
                with in_flight.track():
                    return finish(*run(job(*args, **kwargs)))

            result = sync_handler
        elif mode is HandlerMode.ASYNC:

            async def async_handler(*args: Any, **kwargs: Any) -> Out:
                # Blocking call straight on the event loop: the pitfall under study.
                with in_flight.track():
                    return finish(*run(job(*args, **kwargs)))

            result = async_handler
        else:

            async def offload_handler(*args: Any, **kwargs: Any) -> Out:
                with in_flight.track():
                    thunk = job(*args, **kwargs)
                    done = await anyio.to_thread.run_sync(run, thunk, limiter=self.limiter)
                    return finish(*done)

            result = offload_handler
        signature = inspect.signature(job)
        setattr(result, "__signature__", signature.replace(return_annotation=inspect.Signature.empty))  # noqa: B010
        result.__name__ = f"{kind}_{work}"
        result.__doc__ = job.__doc__
        return result
