"""uvicorn-worker's ``UvicornWorker`` with gunicorn's quick shutdown mended.

gunicorn answers SIGINT and SIGQUIT with a *quick* shutdown: it sends SIGQUIT
to every worker and waits up to ``graceful_timeout``. ``UvicornWorker`` (0.4.0)
routes SIGQUIT to gunicorn's ``Worker.handle_exit``, which only sets
``alive = False`` -- a flag the uvicorn server inside never reads -- so each
worker lingers for the whole graceful timeout and is then SIGKILLed (measured
here: Ctrl-C on a 1-worker gunicorn took 30 s). This subclass routes SIGQUIT
to the uvicorn server itself: a quick exit, as gunicorn means it.

It also closes a window in which a stop signal is lost. A worker is forked
with the arbiter's signal handlers, which only queue a signal for the
arbiter's main loop; the worker replaces them in ``init_signals``. A SIGTERM
that reaches a new worker in between -- the arbiter stopping just as it
replaces a worker killed by its timeout, as the probe's timeout scenario
does -- is queued in the worker's copy of that queue and never read: the
worker boots and serves, and the arbiter waits its whole graceful timeout
(30 s) before SIGKILL. :class:`LaunchArbiter` blocks the stop signals around
the fork, and the worker unblocks them once its own handlers are in place,
so a pending stop is delivered then (and, before uvicorn runs, ends the
still-booting worker at once).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from gunicorn.arbiter import Arbiter
from gunicorn.workers.gasgi import ASGIWorker
from uvicorn.server import Server
from uvicorn_worker import UvicornWorker

QUICK_EXIT_GRACE_S = 1.0
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGQUIT})
"""The signals gunicorn sends a worker to stop it: held across the fork, delivered once the worker can act on them."""


class LaunchArbiter(Arbiter):  # type: ignore[misc]
    """gunicorn's arbiter, forking workers with the stop signals blocked (see the module's docstring)."""

    def spawn_worker(self) -> int:
        """Fork one worker as gunicorn does, with SIGTERM, SIGINT and SIGQUIT held until it can handle them."""
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            pid: int = super().spawn_worker()
            return pid
        finally:
            # In the arbiter only: a worker leaves spawn_worker when it exits, and unblocks in init_signals.
            if os.getpid() == self.pid:
                signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class LaunchUvicornWorker(UvicornWorker):  # type: ignore[misc]
    """``UvicornWorker`` whose SIGQUIT stops its server at once, and that receives a stop sent while it was forked."""

    def init_signals(self) -> None:
        """uvicorn-worker's signal set-up, then the stop signals held since the fork are let through."""
        super().init_signals()
        # Its own handlers (the defaults, until uvicorn installs its own) are
        # in place: a stop signal held since the fork is delivered now.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)

    async def _serve(self) -> None:
        self.config.app = self.wsgi
        server = Server(config=self.config)

        loop = asyncio.get_running_loop()

        def force() -> None:
            server.force_exit = True

        def quick_exit() -> None:
            # gunicorn's quick shutdown: stop accepting at once; idle workers
            # exit cleanly (lifespan shutdown included), busy ones are forced
            # after QUICK_EXIT_GRACE_S instead of waiting for their requests.
            server.should_exit = True
            loop.call_later(QUICK_EXIT_GRACE_S, force)

        loop.add_signal_handler(signal.SIGQUIT, quick_exit)
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)


class LaunchASGIWorker(ASGIWorker):  # type: ignore[misc]
    """gunicorn's native ``asgi`` worker, receiving a stop sent while it was forked (see the module's docstring)."""

    def init_signals(self) -> None:
        """Gunicorn's signal set-up, then the stop signals held since the fork are let through."""
        super().init_signals()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
