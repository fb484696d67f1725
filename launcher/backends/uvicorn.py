"""uvicorn: ``Server`` for one worker, its ``Multiprocess`` supervisor for several."""

from __future__ import annotations

from types import FrameType
from typing import Any

from launcher.backends.base import APP_FACTORY, ServeSpec
from launcher.errors import BackendError


def _server_class() -> type[Any]:
    import uvicorn

    class QuietExitServer(uvicorn.Server):
        """A ``uvicorn.Server`` that does not re-raise the signal that stopped it.

        After a graceful stop uvicorn re-raises the captured SIGINT/SIGTERM so
        the process dies of it; the launcher still has clean-up to do and
        exits 0 after a graceful stop, whatever the backend.
        """

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            super().handle_exit(sig, frame)
            captured = getattr(self, "_captured_signals", None)
            if isinstance(captured, list):
                captured.clear()

    return QuietExitServer


class Backend:
    """uvicorn, embedded."""

    name = "uvicorn"

    def serve(self, spec: ServeSpec) -> None:
        """Run uvicorn on ``spec.sock``; one worker in this process, several under its supervisor."""
        import uvicorn
        from uvicorn.config import STARTUP_FAILURE
        from uvicorn.supervisors import Multiprocess

        config = uvicorn.Config(
            APP_FACTORY,
            factory=True,
            workers=spec.profile.workers,
            lifespan="on",
            log_level=spec.log_level,
            access_log=spec.access_log,
            timeout_graceful_shutdown=spec.timeout_seconds,
        )
        if spec.profile.workers == 1:
            server = _server_class()(config)
            try:
                server.run(sockets=[spec.sock])
            except SystemExit as exc:  # uvicorn exits on lifespan or import failure
                raise BackendError(f"uvicorn worker failed to start (exit {exc.code})") from None
            if not server.started and not server.should_exit:
                raise BackendError("uvicorn stopped before it started serving")
            return
        supervisor = Multiprocess(config, sockets=[spec.sock])
        supervisor.run()
        failed = [p for p in supervisor.processes if p.exitcode == STARTUP_FAILURE]
        if failed:
            raise BackendError(f"uvicorn worker [{failed[0].pid}] failed to start")
