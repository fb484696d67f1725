"""uvicorn-worker's ``UvicornWorker`` with gunicorn's quick shutdown mended.

gunicorn answers SIGINT and SIGQUIT with a *quick* shutdown: it sends SIGQUIT
to every worker and waits up to ``graceful_timeout``. ``UvicornWorker`` (0.4.0)
routes SIGQUIT to gunicorn's ``Worker.handle_exit``, which only sets
``alive = False`` -- a flag the uvicorn server inside never reads -- so each
worker lingers for the whole graceful timeout and is then SIGKILLed (measured
here: Ctrl-C on a 1-worker gunicorn took 30 s). This subclass routes SIGQUIT
to the uvicorn server itself: a quick exit, as gunicorn means it.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from gunicorn.arbiter import Arbiter
from uvicorn.server import Server
from uvicorn_worker import UvicornWorker

QUICK_EXIT_GRACE_S = 1.0


class LaunchUvicornWorker(UvicornWorker):  # type: ignore[misc]
    """``UvicornWorker`` whose SIGQUIT stops its server at once."""

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
