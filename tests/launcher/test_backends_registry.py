"""Profiles own the backend names; the launcher's registry must serve exactly those (no server started)."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import launcher.backends
from launcher.backends import REGISTRY, base, get_backend
from profiles.model import BACKEND_NAMES


@pytest.mark.parametrize("name", BACKEND_NAMES)
def test_every_profile_backend_name_has_a_backend_of_that_name(name: str) -> None:
    assert REGISTRY[name] == f"launcher.backends.{name.replace('-', '_')}"
    assert get_backend(name).name == name


def test_every_backend_module_is_a_name_profiles_accept() -> None:
    names = [info.name for info in pkgutil.iter_modules(launcher.backends.__path__)]
    modules = {name: importlib.import_module(f"launcher.backends.{name}") for name in names}
    # base.py holds the Protocol itself; every other module defining a Backend is a backend.
    with_a_backend = {
        name for name, module in modules.items() if getattr(module, "Backend", base.Backend) is not base.Backend
    }
    # gunicorn_worker holds gunicorn's worker classes, not a backend of its own.
    assert {m.replace("_", "-") for m in with_a_backend} == set(BACKEND_NAMES) == set(REGISTRY)


def test_unknown_name_is_refused_naming_the_choices() -> None:
    with pytest.raises(KeyError, match="uvicorn, gunicorn, hypercorn"):
        get_backend("daphne")
