"""Servers the bench measures: built-in profiles through ServerProcess, and the backends' own CLIs."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

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


def serve_run_config(port: int, folder: Path) -> Path:
    """The Serve config ``launch serve-config --profile ray-1-sync`` writes, with no model, on ``port``.

    ``serve run`` takes its host and port only from a config file (an import
    path gets Ray's 8000), so the CLI side of the Ray row runs the same file a
    user would deploy.
    """
    from launcher.cli.serve_config import config_for

    config = config_for(builtin_profiles()["ray-1-sync"].replace(model="none", port=port))
    path = folder / f"serve-{port}.json"
    path.write_text(json.dumps(config))
    return path


def native_command(backend: str, port: int, folder: Path | None = None) -> list[str]:
    """The same backend from its own command line, same app, same settings.

    uvicorn's CLI logs every request unless told not to; the launcher does
    not (access logging is off unless ``--access-log``), so ``--no-access-log``
    keeps the two equal. gunicorn, hypercorn and granian log no access by
    default. Ray's ``serve run`` needs a config file, written into ``folder``.
    """
    bind = f"127.0.0.1:{port}"
    host_port = ["--host", "127.0.0.1", "--port", str(port)]
    if backend == "uvicorn":
        return [venv_bin("uvicorn"), "--factory", "app.main:create_app", *host_port, "--no-access-log"]
    if backend == "gunicorn":
        return [venv_bin("gunicorn"), "-k", "uvicorn_worker.UvicornWorker", "app.main:create_app()", "-b", bind]
    if backend == "hypercorn":
        return [venv_bin("hypercorn"), "app.main:create_app()", "-b", bind]
    if backend == "granian":
        return [venv_bin("granian"), "--interface", "asgi", "--factory", "app.main:create_app", *host_port]
    if backend == "gunicorn-asgi":
        return [venv_bin("gunicorn"), "-k", "asgi", "app.main:create_app()", "-b", bind]
    if backend == "ray":
        if folder is None:
            raise ValueError("serve run needs a folder for its config file")
        return [venv_bin("serve"), "run", str(serve_run_config(port, folder))]
    raise ValueError(f"unknown backend {backend!r}")
