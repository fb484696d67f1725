"""Shared fixtures: a private model cache, served profiles, a CliRunner; the guard that keeps `not e2e` fast."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from launcher.child import ServerProcess
from launcher.procs import group_alive
from profiles import Profile, builtin_profiles

if TYPE_CHECKING:
    from launcher.probe.model import ProbeRun
    from launcher.probe.scenarios import ProbeOptions

# Every test that starts a process carries @pytest.mark.e2e, so that `pytest -m "not e2e"` stays a
# seconds-long inner loop. The guard below makes that true rather than hoped for: while an unmarked test
# sets up or runs, starting a process raises, so a missing marker fails loudly instead of slowing the subset.
_SPAWN_EVENTS = frozenset(
    {"subprocess.Popen", "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.exec", "os.system"}
)
_spawn_forbidden_in: str | None = None


def _refuse_unmarked_spawns(event: str, args: tuple[object, ...]) -> None:
    if _spawn_forbidden_in is not None and event in _SPAWN_EVENTS:
        raise RuntimeError(f"{_spawn_forbidden_in} starts a process ({event}) but is not marked @pytest.mark.e2e")


sys.addaudithook(_refuse_unmarked_spawns)  # audit hooks cannot be removed; the flag switches it on and off


@contextlib.contextmanager
def _guarded(item: pytest.Item) -> Iterator[None]:
    global _spawn_forbidden_in
    _spawn_forbidden_in = None if item.get_closest_marker("e2e") else item.nodeid
    try:
        yield
    finally:
        _spawn_forbidden_in = None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, object, object]:
    with _guarded(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    with _guarded(item):
        return (yield)


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One tiny-pipeline cache for the whole run, inherited by every child server."""
    cache = Path(os.environ.get("LAUNCH_TEST_CACHE") or tmp_path_factory.mktemp("model-cache"))
    old = os.environ.get("LAUNCH_CACHE_DIR")
    os.environ["LAUNCH_CACHE_DIR"] = str(cache)
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    yield cache
    if old is None:
        os.environ.pop("LAUNCH_CACHE_DIR", None)
    else:
        os.environ["LAUNCH_CACHE_DIR"] = old


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def builtin(name: str, **changes: object) -> Profile:
    """A built-in profile, optionally changed."""
    profile = builtin_profiles()[name]
    return profile.replace(**changes) if changes else profile


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start profiles as real `launch` children; every one is stopped and checked gone afterwards."""
    started: list[ServerProcess] = []

    def start(profile: Profile, **kwargs: object) -> ServerProcess:
        server = ServerProcess(profile=profile, log_path=tmp_path / f"{profile.name}-{len(started)}.log", **kwargs)  # type: ignore[arg-type]
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.stop()
        assert server.pid is not None
        assert not group_alive(server.pid), f"{server.profile.name}: processes left in its group"


@pytest.fixture(scope="module")
def shared_server() -> Iterator[ServerProcess]:
    """One uvicorn-1-sync server shared by a module's read-only tests."""
    server = ServerProcess(profile=builtin("uvicorn-1-sync", model="none"))
    server.start()
    yield server
    server.stop()
    server.cleanup()


def probe_killing_one(
    profile: Profile, options: ProbeOptions, victim: Callable[[], int | None], *, after: float = 0.8
) -> tuple[ProbeRun, list[int]]:
    """Probe ``profile`` and SIGKILL the pid ``victim()`` names ``after`` s into its sleep burst; (run, killed)."""
    import signal
    import threading
    import time

    from launcher.probe.runner import ProgressEvent, run_probe
    from launcher.probe.scenarios import ProfileTarget

    killed: list[int] = []

    def kill() -> None:
        time.sleep(after)
        pid = victim()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    def progress(event: ProgressEvent) -> None:
        if event.phase == "sleep":
            threading.Thread(target=kill, daemon=True).start()

    return run_probe([ProfileTarget(profile=profile)], options, progress=progress), killed
