"""Stop signals that are never lost: Ctrl-C and SIGTERM end a long run in whatever phase it is.

The probe and the capacity sweep stop the way Python stops on Ctrl-C: a
``KeyboardInterrupt`` raised in the main thread ends whatever it was waiting
for, and every ``finally`` on the way out stops the servers and keeps the
results. Two things lose that exception:

* ``asyncio.run`` swaps in its own SIGINT handler, which only *cancels* the
  main task and turns the cancellation back into ``KeyboardInterrupt`` only
  if the task ends cancelled. A task that swallows the cancellation returns
  normally, and the Ctrl-C is gone. Python 3.11's ``asyncio.wait_for``
  swallows it when its inner future is already done: reproduced with the
  burst client's ``finally: stop.set(); await poller``, where a Ctrl-C made
  ``asyncio.run`` return its result (the probe went on and ended with exit 7,
  not 130).
* any code that catches ``BaseException`` without re-raising.

So :func:`stop_signals` installs one handler for SIGINT and SIGTERM. Like
gunicorn's arbiter, it first *records* the signal (sticky, for every thread
to see); then, once, it ends the wait in progress:

* in an event loop run by :func:`run` (this module's ``asyncio.run``), it
  cancels the main task, and cancels it again every 50 ms until it has
  ended: a task that swallows one cancellation cannot swallow the stop. Every
  ``finally`` of the coroutine runs; :func:`run` then raises
  ``KeyboardInterrupt``. (Raising inside the loop instead would land in
  whichever task was running, which asyncio then reports as "exception
  never retrieved".)
* anywhere else in the main thread, it raises ``KeyboardInterrupt``.

A later signal is only recorded: the clean-up on the way out (stopping
servers, bounded) is not cut short, and :func:`shielded` blocks defer even
the first one. The long runs call :func:`reached` at every phase boundary,
which raises when a recorded signal has not ended the run yet: a stop is
honoured at the next phase at the latest, whatever swallowed it.

:data:`HOLD_ENV` is the seam for the tests that send a signal in each phase:
``LAUNCH_HOLD_AT=PHASE`` makes the run stop at the first :func:`reached`
of that phase, say so on stderr (``launch: holding at PHASE``), and wait there
until a stop signal arrives (at most :data:`HOLD_SECONDS`), so that the
signal lands in that phase rather than wherever a sleep happened to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Coroutine, Iterator
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")

STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)
HOLD_ENV = "LAUNCH_HOLD_AT"
"""A phase name (see :data:`PHASES`): hold the run the first time it reaches it (for tests)."""
RECANCEL_SECONDS = 0.05
"""How often a stopped event loop's main task is cancelled again until it has ended."""
HOLD_SECONDS = 60.0
"""A hold ends by itself after this long, so a test that never sends its signal cannot hang a run."""
PHASES: tuple[str, ...] = (
    "calibration",
    "start",
    "burst",
    "stop",
    "timeouts",
    "write",
    "step",
    "idle",
)
"""The phases a long run reports, and a test can hold: the probe's calibration, a server's start (its
process running, not yet ready), a burst in flight (``burst:SCENARIO`` holds one scenario's), a server's
stop (in the background beside the next start, for the probe), the side-by-side timeout batch, the final
write of the results; capacity's open-loop steps and its wait for an idle server."""


class _State:
    def __init__(self) -> None:
        self.received: signal.Signals | None = None
        self.raised = False
        self.stopped = threading.Event()
        self.held: set[str] = set()
        self.shields = 0
        self.task: tuple[asyncio.AbstractEventLoop, asyncio.Task[Any]] | None = None
        """The main task of the event loop :func:`run` is running, if any."""


_state = _State()


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    _state.received = signal.Signals(signum)
    _state.stopped.set()
    if _state.raised or _state.shields:
        return
    _state.raised = True
    if _state.task is not None:
        loop, task = _state.task
        loop.call_soon_threadsafe(_cancel_until_done, loop, task)
        return
    raise KeyboardInterrupt


def _cancel_until_done(loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any]) -> None:
    if not task.done():
        task.cancel()
        loop.call_later(RECANCEL_SECONDS, _cancel_until_done, loop, task)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(coro)``, ended by a stop signal (see the module's note): ``KeyboardInterrupt`` then.

    Also raises ``KeyboardInterrupt`` when a stop signal came before, or when
    one arrived while the coroutine finished anyway.
    """
    raise_if_stopped()
    if threading.current_thread() is not threading.main_thread():
        return asyncio.run(coro)
    with asyncio.Runner() as runner:
        task = runner.get_loop().create_task(coro)
        outer = _state
        outer.task = (runner.get_loop(), task)
        try:
            result = runner.run(_wait(task))
        except asyncio.CancelledError:
            if outer.received is None:
                raise
            raise KeyboardInterrupt from None
        finally:
            outer.task = None
    raise_if_stopped()
    return result


async def _wait(task: asyncio.Task[T]) -> T:
    return await task


@contextlib.contextmanager
def stop_signals() -> Iterator[None]:
    """SIGINT and SIGTERM, recorded and raised as ``KeyboardInterrupt`` (once) while the block runs.

    Only from the main thread (signal handlers can only be set there); the
    previous handlers come back afterwards, and the record is cleared.
    """
    previous = {sig: signal.signal(sig, _on_signal) for sig in STOP_SIGNALS}
    hook = threading.excepthook

    def quiet_after_a_stop(args: threading.ExceptHookArgs) -> None:
        # Once stopping, a client thread whose server went away under it (gradio_client's event stream
        # reader, say) is expected to fail: that is the stop working, not a traceback to show the user.
        if _state.received is None:
            hook(args)

    threading.excepthook = quiet_after_a_stop
    try:
        yield
    finally:
        threading.excepthook = hook
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _reset()


def _reset() -> None:
    global _state
    _state = _State()


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """A stop signal during the block is recorded, not raised: for clean-up that must run to its end.

    Stopping a server is such clean-up: cut short, it would leave the server
    running and its result unrecorded. The signal is honoured afterwards, at
    the run's next :func:`reached` or :func:`raise_if_stopped`. Only the main
    thread is shielded (the handler only runs there); elsewhere a no-op.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    state = _state
    state.shields += 1
    try:
        yield
    finally:
        state.shields -= 1


def stopped() -> signal.Signals | None:
    """The stop signal received, if any (any thread may ask)."""
    return _state.received


def raise_if_stopped() -> None:
    """``KeyboardInterrupt`` in the main thread when a stop signal was received (even if it was swallowed).

    Other threads are left to finish: the main thread decides how the run ends.
    """
    if _state.received is not None and threading.current_thread() is threading.main_thread():
        _state.raised = True
        raise KeyboardInterrupt


def _hold_wanted(phase: str) -> bool:
    wanted = os.environ.get(HOLD_ENV)
    if not wanted or phase in _state.held:
        return False
    if wanted not in (phase, phase.split(":", 1)[0]):
        return False
    _state.held.add(phase)
    _state.held.add(wanted)
    print(f"launch: holding at {phase}", file=sys.stderr, flush=True)
    return True


def reached(phase: str) -> None:
    """The run enters ``phase``: honour a recorded stop signal, or hold there if a test asked to."""
    raise_if_stopped()
    hold(phase)
    raise_if_stopped()


def hold(phase: str) -> None:
    """Hold at ``phase`` if a test asked to, until a stop signal arrives; never raises by itself.

    For clean-up phases (a server's stop), under :func:`shielded` in the main
    thread: there the signal is recorded and the clean-up goes on. Elsewhere
    in the main thread, the handler's ``KeyboardInterrupt`` ends the wait.
    """
    if _hold_wanted(phase):
        _state.stopped.wait(HOLD_SECONDS)


async def areached(phase: str) -> None:
    """:func:`reached` inside an event loop: a hold keeps the loop running (the requests in flight go on)."""
    raise_if_stopped()
    if _hold_wanted(phase):
        deadline = time.monotonic() + HOLD_SECONDS
        while not _state.stopped.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        raise_if_stopped()
