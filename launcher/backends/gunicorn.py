"""gunicorn: a ``BaseApplication`` with uvicorn-worker's ``UvicornWorker``."""

from __future__ import annotations

import os
import sys
from typing import Any, NoReturn

from launcher.backends.base import ServeSpec
from launcher.errors import BackendError

WORKER_CLASS = "launcher.backends.gunicorn_worker.LaunchUvicornWorker"
"""uvicorn-worker's ``UvicornWorker`` (``uvicorn.workers`` is deprecated), with SIGQUIT mended."""


def _application_class() -> type[Any]:
    from gunicorn.app.base import BaseApplication

    from launcher.backends.gunicorn_worker import LaunchArbiter

    class LaunchApplication(BaseApplication):  # type: ignore[misc]
        """gunicorn application whose settings come from a dict, not a command line."""

        def __init__(self, options: dict[str, Any]) -> None:
            self._options = options
            super().__init__()

        def load_config(self) -> None:
            for key, value in self._options.items():
                # cfg.set raises on an unknown setting: nothing is dropped silently.
                self.cfg.set(key, value)

        def run(self) -> None:
            # BaseApplication.run with our arbiter (stop signals held across each fork).
            try:
                LaunchArbiter(self).run()
            except RuntimeError as exc:
                print(f"\nError: {exc}\n", file=sys.stderr)
                sys.stderr.flush()
                sys.exit(1)

        def load(self) -> Any:
            # Runs in each worker after fork (no preload): the model is
            # loaded per worker, in the app's lifespan.
            from launcher.asgi import create_app

            return create_app()

    return LaunchApplication


def gunicorn_options(spec: ServeSpec, worker_class: str = WORKER_CLASS) -> dict[str, Any]:
    """Gunicorn settings for ``spec``."""
    timeout = spec.timeout_seconds
    return {
        "bind": [f"fd://{spec.sock.fileno()}"],
        "workers": spec.profile.workers,
        "worker_class": worker_class,
        # The worker timeout: a worker whose event loop does not check in for
        # this long is killed. It is a liveness check, not a request timeout.
        "timeout": timeout,
        "graceful_timeout": timeout,
        # gunicorn >= 25.1 opens a control socket at one fixed path by default;
        # two instances (a probe matrix, tests) would collide on it.
        "control_socket_disable": True,
        "loglevel": spec.log_level,
        "errorlog": "-",
        "accesslog": "-" if spec.access_log else None,
        "proc_name": f"launch:{spec.profile.name}",
    }


def _exit_worker(code: object) -> NoReturn:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else (0 if code is None else 1))


class Backend:
    """gunicorn, embedded."""

    name = "gunicorn"

    def options(self, spec: ServeSpec) -> dict[str, Any]:
        """The gunicorn settings this backend runs ``spec`` with."""
        return gunicorn_options(spec)

    def serve(self, spec: ServeSpec) -> None:
        """Run gunicorn's arbiter in this process; workers are forked from it."""
        # Workers are forked: libraries imported here are shared by all of
        # them (the model itself is still loaded per worker, in the lifespan).
        import app.main  # noqa: F401
        from app.pipeline import NO_MODEL, import_libraries

        if spec.profile.model != NO_MODEL:
            import_libraries()
        from gunicorn.errors import HaltServer

        application = _application_class()(self.options(spec))
        master = os.getpid()
        try:
            application.run()
        except HaltServer as exc:  # raised past the arbiter's own handler when boot fails early
            raise BackendError(f"gunicorn halted: {exc.reason} (exit status {exc.exit_status})") from None
        except SystemExit as exc:  # the arbiter and its workers end through sys.exit
            if os.getpid() != master:
                # A forked worker finishing: its SystemExit climbs through the
                # launcher's frames, whose clean-up belongs to the master only.
                _exit_worker(exc.code)
            if exc.code not in (0, None):
                raise BackendError(
                    f"gunicorn stopped with exit status {exc.code} (worker boot or app load failed)"
                ) from None
