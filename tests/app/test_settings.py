"""AppSettings travel to every worker as LAUNCH_* variables; bad ones are named."""

from __future__ import annotations

import re

import pytest

from app.errors import ExitCode, LaunchError
from app.settings import ENV_PREFIX, MODES, AppSettings, HandlerMode, SettingsError


def test_empty_environment_gives_the_defaults() -> None:
    assert AppSettings.from_env({}) == AppSettings()
    defaults = AppSettings()
    assert defaults.mode is HandlerMode.SYNC
    assert (defaults.concurrency_limit, defaults.limiter, defaults.model) == (1, 1, "tiny")
    assert (defaults.cpu_rate, defaults.control_socket, defaults.supervisor_pid) == (None, None, None)
    assert defaults.watchdog_interval == 0.0


@pytest.mark.parametrize(
    "settings",
    [
        AppSettings(),
        AppSettings(
            mode=HandlerMode.OFFLOAD,
            concurrency_limit=4,
            limiter=2,
            model="/opt/models/sd-turbo",
            cpu_rate=12345678.9,
            control_socket="/tmp/launch-ctl-x/notify.sock",
            watchdog_interval=2.5,
            supervisor_pid=4242,
        ),
        AppSettings(mode=HandlerMode.ASYNC, model="none", cpu_rate=0.1, watchdog_interval=1e-3),
        AppSettings(cpu_rate=1 / 3, control_socket="@abstract-name"),
        AppSettings(attribution=True, lab=True),
        AppSettings(disconnect_relay=True),
    ],
)
def test_to_env_from_env_round_trip(settings: AppSettings) -> None:
    env = settings.to_env()
    assert all(key.startswith(ENV_PREFIX) for key in env)
    assert all(isinstance(value, str) for value in env.values())
    assert AppSettings.from_env(env) == settings


def test_to_env_leaves_out_unset_optionals() -> None:
    assert set(AppSettings().to_env()) == {
        "LAUNCH_DISCONNECT_RELAY",
        "LAUNCH_MODE",
        "LAUNCH_CONCURRENCY_LIMIT",
        "LAUNCH_LIMITER",
        "LAUNCH_MODEL",
        "LAUNCH_WATCHDOG_INTERVAL",
        # Always explicit, so a worker never inherits a stale setting from its environment.
        "LAUNCH_ATTRIBUTION",
        "LAUNCH_LAB",
    }


def test_from_env_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = AppSettings(mode=HandlerMode.ASYNC, limiter=3, cpu_rate=99.5, supervisor_pid=7)
    for key, value in settings.to_env().items():
        monkeypatch.setenv(key, value)
    assert AppSettings.from_env() == settings


def test_from_env_ignores_other_variables() -> None:
    assert AppSettings.from_env({"MODE": "async", "LIMITER": "x", "LAUNCH_CACHE_DIR": "/tmp"}) == AppSettings()


@pytest.mark.parametrize(
    "key", ["MODE", "CONCURRENCY_LIMIT", "LIMITER", "MODEL", "CPU_RATE", "CONTROL_SOCKET", "WATCHDOG_INTERVAL"]
)
def test_empty_values_count_as_unset(key: str) -> None:
    assert AppSettings.from_env({ENV_PREFIX + key: ""}) == AppSettings()


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_is_read(mode: str) -> None:
    assert AppSettings.from_env({"LAUNCH_MODE": mode}).mode == HandlerMode(mode)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("MODE", "fast"),
        ("MODE", "SYNC"),
        ("CONCURRENCY_LIMIT", "abc"),
        ("CONCURRENCY_LIMIT", "1e3"),
        ("LIMITER", "1.5"),
        ("LIMITER", "two"),
        ("CPU_RATE", "fast"),
        ("CPU_RATE", "1,5"),
        ("WATCHDOG_INTERVAL", "5s"),
        ("SUPERVISOR_PID", "abc"),
        ("SUPERVISOR_PID", "12.0"),
    ],
)
def test_malformed_value_names_the_variable(key: str, value: str) -> None:
    with pytest.raises(SettingsError, match=rf"^LAUNCH_{key}={re.escape(repr(value))} is not "):
        AppSettings.from_env({ENV_PREFIX + key: value})


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("CONCURRENCY_LIMIT", "0"),
        ("LIMITER", "-1"),
        ("CPU_RATE", "0"),
        ("CPU_RATE", "-2.5"),
        ("WATCHDOG_INTERVAL", "-1"),
    ],
)
def test_out_of_range_value_is_rejected(key: str, value: str) -> None:
    with pytest.raises(SettingsError, match=key.lower()):
        AppSettings.from_env({ENV_PREFIX + key: value})


@pytest.mark.parametrize(("key", "value"), [("CONCURRENCY_LIMIT", "0"), ("CPU_RATE", "-2.5")])
def test_out_of_range_value_names_the_variable(key: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"LAUNCH_{key}"):
        AppSettings.from_env({ENV_PREFIX + key: value})


@pytest.mark.parametrize(("key", "value"), [("CPU_RATE", "nan"), ("CPU_RATE", "inf"), ("WATCHDOG_INTERVAL", "nan")])
def test_non_finite_numbers_are_rejected(key: str, value: str) -> None:
    with pytest.raises(SettingsError):
        AppSettings.from_env({ENV_PREFIX + key: value})


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"concurrency_limit": 0}, "concurrency_limit"),
        ({"limiter": 0}, "limiter"),
        ({"cpu_rate": 0.0}, "cpu_rate"),
        ({"watchdog_interval": -0.5}, "watchdog_interval"),
    ],
)
def test_direct_construction_is_validated(changes: dict[str, float], field: str) -> None:
    with pytest.raises(SettingsError, match=f"^{field} must be"):
        AppSettings(**changes)  # type: ignore[arg-type]


def test_settings_error_is_a_launch_error() -> None:
    assert issubclass(SettingsError, LaunchError)
    assert SettingsError("x").exit_code == ExitCode.USAGE
