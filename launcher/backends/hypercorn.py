"""hypercorn: ``hypercorn.asyncio.serve`` in process for one worker, ``hypercorn.run.run`` for several."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from launcher.backends.base import APP_FACTORY, ServeSpec
from launcher.errors import BackendError


def hypercorn_config(spec: ServeSpec) -> Any:
    """A hypercorn ``Config`` for ``spec``."""
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"fd://{spec.sock.fileno()}"]
    config.workers = spec.profile.workers
    # hypercorn evaluates the part after ':' in the module: a factory call works.
    config.application_path = f"{APP_FACTORY}()"
    config.graceful_timeout = float(spec.profile.timeout)
    config.loglevel = spec.log_level.upper()
    config.errorlog = "-"
    config.accesslog = "-" if spec.access_log else None
    return config


async def _serve_in_process(app: Any, config: Any) -> None:
    from hypercorn.asyncio import serve

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()

    def on_signal() -> None:
        # First signal: graceful (up to graceful_timeout); second: stop now.
        if stop.is_set() and main is not None:
            main.cancel()
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    await serve(app, config, shutdown_trigger=stop.wait, mode="asgi")


class Backend:
    """hypercorn, embedded."""

    name = "hypercorn"

    def serve(self, spec: ServeSpec) -> None:
        """Serve with hypercorn; several workers are spawned by ``hypercorn.run.run``."""
        config = hypercorn_config(spec)
        if spec.profile.workers == 1:
            from launcher.asgi import create_app

            try:
                asyncio.run(_serve_in_process(create_app(), config))
            except asyncio.CancelledError:
                return  # forced by a second signal
            except Exception as exc:  # lifespan failures surface as assorted exceptions
                raise BackendError(f"hypercorn failed: {type(exc).__name__}: {exc}") from exc
            return
        from hypercorn.run import run

        code = run(config)
        if code != 0:
            raise BackendError(f"hypercorn stopped with exit status {code} (a worker failed or died)")
