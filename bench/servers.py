"""Servers the bench measures: built-in profiles through ServerProcess, and the backends' own CLIs."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from bench.common import BASE_ENV, SERVER_CPU, group_pids, pin, python, venv_bin
from launcher.child import ServerProcess
from profiles import builtin_profiles

APP_ENV = {"LAUNCH_MODEL": "none", "LAUNCH_MODE": "sync", **BASE_ENV}
"""What the backends' own command lines need to serve the same app as ``--model none --mode sync``."""


@contextlib.contextmanager
def launched(name: str, **changes: object) -> Iterator[ServerProcess]:
    """A built-in profile served by a ``launch`` child (ServerProcess); always stopped."""
    profile = builtin_profiles()[name]
    if changes:
        profile = profile.replace(**changes)
    server = ServerProcess(profile=profile, env=dict(BASE_ENV), log_level="warning")
    try:
        server.start()
        yield server
    finally:
        server.stop()
        server.cleanup()


def pin_server(server: ServerProcess, pinned: bool) -> int:
    """Server on the server core (launcher, workers and every thread), or back on every core."""
    assert server.pid is not None
    return pin(group_pids(server.pid), {SERVER_CPU} if pinned else None)


def embedded_command(backend: str, port: int) -> list[str]:
    """``launch`` serving the backend's 1-worker sync profile with no model on ``port``."""
    return [python(), "-m", "launcher", "--profile", f"{backend}-1-sync", "--model", "none", "--port", str(port)]


def native_command(backend: str, port: int) -> list[str]:
    """The same backend from its own command line, same app, same settings.

    uvicorn's CLI logs every request unless told not to; the launcher does
    not (access logging is off unless ``--access-log``), so ``--no-access-log``
    keeps the two equal. gunicorn and hypercorn log no access by default.
    """
    bind = f"127.0.0.1:{port}"
    if backend == "uvicorn":
        return [
            venv_bin("uvicorn"),
            "--factory",
            "app.main:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
        ]
    if backend == "gunicorn":
        return [venv_bin("gunicorn"), "-k", "uvicorn_worker.UvicornWorker", "app.main:create_app()", "-b", bind]
    if backend == "hypercorn":
        return [venv_bin("hypercorn"), "app.main:create_app()", "-b", bind]
    raise ValueError(f"unknown backend {backend!r}")
