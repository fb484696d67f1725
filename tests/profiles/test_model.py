"""Profile: a frozen, keyword-only, validated value; the 30 built-ins."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

from profiles import FIELDS, Profile, ProfileError, builtin_profiles, is_loopback
from profiles.model import DEFAULT_TIMEOUT


def make(**fields: Any) -> Profile:
    return Profile(**{"name": "p", "backend": "uvicorn", **fields})


def test_defaults() -> None:
    profile = make()
    assert profile.workers == 1
    assert profile.timeout == DEFAULT_TIMEOUT == 30.0
    assert profile.mode == "sync" and profile.handler_mode.value == "sync"
    assert (profile.concurrency_limit, profile.limiter) == (1, 1)
    assert (profile.host, profile.port, profile.model, profile.description) == ("127.0.0.1", 8000, "tiny", "")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("name", 3),
        ("backend", 1),
        ("workers", "3"),
        ("workers", 3.0),
        ("workers", True),
        ("timeout", "30"),
        ("timeout", True),
        ("timeout", None),
        ("mode", 1),
        ("concurrency_limit", 2.5),
        ("concurrency_limit", False),
        ("limiter", "1"),
        ("limiter", True),
        ("host", 127),
        ("port", "8000"),
        ("port", 80.0),
        ("port", True),
        ("model", None),
        ("description", 5),
    ],
)
def test_wrong_type_is_rejected_naming_key_and_value(key: str, value: Any) -> None:
    with pytest.raises(ProfileError) as info:
        make(**{key: value})
    message = str(info.value)
    assert message.startswith(f"{key} = {value!r}: expected "), message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("workers", 0),
        ("workers", -1),
        ("workers", 65),
        ("timeout", 0),
        ("timeout", -1),
        ("timeout", 0.0),
        ("timeout", 86401),
        ("timeout", float("inf")),
        ("timeout", float("nan")),
        ("port", 70000),
        ("port", -1),
        ("concurrency_limit", 0),
        ("concurrency_limit", 1025),
        ("limiter", 0),
        ("limiter", -5),
        ("model", ""),
    ],
)
def test_out_of_range_is_rejected_naming_key_and_value(key: str, value: Any) -> None:
    with pytest.raises(ProfileError, match=rf"^{key} = {re.escape(repr(value))}: expected "):
        make(**{key: value})


@pytest.mark.parametrize(
    ("key", "value"),
    [("workers", 1), ("workers", 64), ("timeout", 0.001), ("timeout", 86400), ("port", 0), ("port", 65535)],
)
def test_range_edges_are_accepted(key: str, value: Any) -> None:
    assert getattr(make(**{key: value}), key) == value


def test_integer_timeout_becomes_float() -> None:
    profile = make(timeout=120)
    assert profile.timeout == 120.0 and isinstance(profile.timeout, float)


def test_unknown_mode_lists_the_modes() -> None:
    with pytest.raises(ProfileError, match=r"^mode = 'fast': expected one of sync, async, offload$"):
        make(mode="fast")


def test_unknown_backend_lists_the_backends() -> None:
    expected = "uvicorn, gunicorn, hypercorn, granian, gunicorn-asgi, ray, ray-split"
    with pytest.raises(ProfileError, match=rf"^backend = 'daphne': expected one of {expected}$"):
        make(backend="daphne")


@pytest.mark.parametrize("host", ["", "example.com", "127.0.0.300", "0.0.0.0:80", " 127.0.0.1"])
def test_bad_host_is_rejected(host: str) -> None:
    with pytest.raises(ProfileError, match=rf"^host = {re.escape(repr(host))}: expected an IP address or 'localhost'"):
        make(host=host)


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "0.0.0.0", "::1", "::", "10.1.2.3"])
def test_good_hosts_are_accepted(host: str) -> None:
    assert make(host=host).host == host


def test_is_loopback() -> None:
    assert is_loopback("localhost") and is_loopback("127.0.0.1") and is_loopback("127.8.9.10") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("10.0.0.1")
    assert not is_loopback("not-an-address")


@pytest.mark.parametrize("name", ["", "-lead", ".lead", "has space", "a/b", "x" * 65, "trailing\n", "é"])
def test_bad_name_is_rejected(name: str) -> None:
    with pytest.raises(ProfileError, match=rf"^name = {re.escape(repr(name))}: "):
        make(name=name)


@pytest.mark.parametrize("name", ["a", "my-gpu", "my.gpu", "my_gpu_2", "A" * 64])
def test_good_names_are_accepted(name: str) -> None:
    assert make(name=name).name == name


def test_profile_is_frozen() -> None:
    profile = make()
    with pytest.raises(dataclasses.FrozenInstanceError):
        profile.workers = 3  # type: ignore[misc]


def test_profile_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        Profile("p", "uvicorn")  # type: ignore[call-arg]


def test_profile_is_hashable_and_compares_by_value() -> None:
    assert make(workers=3) == make(workers=3) != make(workers=2)
    assert len({make(), make()}) == 1


def test_replace_applies_changes_and_leaves_the_original() -> None:
    profile = make()
    changed = profile.replace(workers=3, mode="offload", limiter=2)
    assert (changed.workers, changed.mode, changed.limiter) == (3, "offload", 2)
    assert profile.workers == 1 and profile.mode == "sync"


@pytest.mark.parametrize(
    ("changes", "pattern"),
    [
        ({"workers": 0}, r"^workers = 0: "),
        ({"workers": True}, r"^workers = True: "),
        ({"port": 70000}, r"^port = 70000: "),
        ({"mode": "fast"}, r"^mode = 'fast': "),
        ({"host": "nowhere"}, r"^host = 'nowhere': "),
        ({"bogus": 1}, r"^unknown profile field 'bogus' = 1$"),
    ],
)
def test_replace_revalidates(changes: dict[str, Any], pattern: str) -> None:
    with pytest.raises(ProfileError, match=pattern):
        make().replace(**changes)


def test_to_dict_has_every_field() -> None:
    profile = make(workers=2, description="d")
    data = profile.to_dict()
    assert tuple(data) == FIELDS
    assert Profile(**data) == profile


def test_builtin_profiles_are_the_42_named_combinations_and_3_splits() -> None:
    profiles = builtin_profiles()
    expected = {
        f"{backend}-{workers}-{mode}"
        for backend in ("uvicorn", "gunicorn", "hypercorn", "granian", "gunicorn-asgi", "ray", "ray-split")
        for workers in (1, 3)
        for mode in ("sync", "async", "offload")
    }
    splits = {"split-gunicorn-3-offload", "split-uvicorn-3-offload", "split-granian-3-sync"}
    assert len(profiles) == 45
    assert set(profiles) == expected | splits
    for name in splits:
        profile = profiles[name]
        _, backend, workers, mode = name.split("-")
        assert (profile.backend, profile.workers, profile.mode, profile.topology) == (backend, 3, mode, "split")
        assert profile.demo_processes == 1 and profile.processes == 4
        assert profile.description.startswith("split behind Caddy: demo in 1 uvicorn process")
    for name, profile in profiles.items():
        if name in splits:
            continue
        assert profile.topology == "single"
        backend, workers, mode = name.rsplit("-", 2)
        assert profile.name == name
        assert (profile.backend, profile.workers, profile.mode) == (backend, int(workers), mode)
        assert profile.timeout == 30.0
        assert profile.host == "127.0.0.1" and profile.model == "tiny"
        # Ray's replicas play the part of workers; the split topology names its two halves.
        noun = "replica" if backend.startswith("ray") else "worker"
        assert profile.description.startswith(f"{backend}, ") and f"{workers} {noun}" in profile.description


def test_builtin_profiles_are_fresh_each_call() -> None:
    first = builtin_profiles()
    first.clear()
    assert len(builtin_profiles()) == 45


@pytest.mark.parametrize("value", [1, "true", None])
def test_disconnect_relay_is_true_or_false(value: Any) -> None:
    with pytest.raises(ProfileError, match=rf"^disconnect_relay = {re.escape(repr(value))}: expected true or false$"):
        Profile(name="p", backend="gunicorn-asgi", disconnect_relay=value)


def test_disconnect_relay_is_not_for_ray() -> None:
    assert Profile(name="p", backend="granian", disconnect_relay=True).disconnect_relay
    with pytest.raises(ProfileError, match=r"^disconnect_relay = true: not for ray-split"):
        Profile(name="p", backend="ray-split", disconnect_relay=True)
