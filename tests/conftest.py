"""Shared fixtures: a private model cache, served profiles, a CliRunner."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from launcher.child import ServerProcess, group_alive
from profiles import Profile, builtin_profiles


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
