"""One error tree: every error raised on purpose is a LaunchError with its exit code, drawn in launcher.errors."""

from __future__ import annotations

import re

import pytest

import launcher.errors
from app.settings import SettingsError
from launcher.capacity.model import CapacityFileError
from launcher.errors import BackendError, ConfigError, ExitCode, LaunchError, one_line
from launcher.probe.appprobe import AppProbeError
from launcher.probe.memory import NotEnoughMemoryError
from launcher.probe.model import ResultFileError
from launcher.probe.scenario_file import ScenarioFileError
from launcher.probe.store import ResultWriteError
from launcher.userapp import AppLoadError
from profiles import ProfileError


def _subclasses(cls: type[LaunchError]) -> set[type[LaunchError]]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= _subclasses(sub)
    return found


@pytest.mark.parametrize(
    "error",
    [SettingsError, ProfileError, AppLoadError, ScenarioFileError, AppProbeError, ResultFileError, CapacityFileError],
)
def test_file_and_option_errors_are_config_errors_with_exit_2(error: type[LaunchError]) -> None:
    assert issubclass(error, ConfigError)
    assert error("x").exit_code == ExitCode.USAGE


def test_the_other_roots_joined_the_tree() -> None:
    for error in (BackendError, ResultWriteError, NotEnoughMemoryError):
        assert issubclass(error, LaunchError)
    assert not issubclass(ProfileError, ValueError)  # a caller catching ValueError would hide a bad profile


def test_the_drawing_names_every_error_of_the_tree() -> None:
    doc = launcher.errors.__doc__ or ""
    drawn = set(re.findall(r"^\s+[*x+] (\w+)", doc, flags=re.MULTILINE))
    # Test doubles are not the library's errors.
    defined = {c.__name__ for c in _subclasses(LaunchError) | {LaunchError} if not c.__module__.startswith("tests.")}
    assert drawn == defined


def test_the_drawing_gives_each_error_its_exit_code() -> None:
    doc = launcher.errors.__doc__ or ""
    classes = {c.__name__: c for c in _subclasses(LaunchError) | {LaunchError}}
    for name, code in re.findall(r"^\s+[*x] (\w+)\s+(\d+) ", doc, flags=re.MULTILINE):
        assert classes[name].exit_code == int(code), name


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a\nb", "a b"),
        ("  a \r\n\t b  ", "a b"),
        ("a\x1b[31mb\x00c\x7f", "a [31mb c"),
        ("", ""),
    ],
)
def test_one_line_folds_breaks_and_control_characters(text: str, expected: str) -> None:
    assert one_line(text) == expected
