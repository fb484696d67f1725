"""The one table of profile fields as `launch` options, against Profile and the CLI (no process started)."""

from __future__ import annotations

import dataclasses

from launcher.child import launch_command
from launcher.cli import main
from launcher.flags import ADDRESS_FIELDS, PROFILE_OPTIONS, profile_arguments
from profiles import Profile
from tests.conftest import builtin

NOT_OPTIONS = {"name", "backend", "topology", "description"}
"""Fields the name itself gives (a profile's identity: a split's groups are another set-up, not an override), or
that change nothing served."""


def test_every_servable_profile_field_is_an_option_and_nothing_else() -> None:
    fields = {f.name for f in dataclasses.fields(Profile)}
    assert {option.field for option in PROFILE_OPTIONS} == fields - NOT_OPTIONS


def test_the_cli_declares_exactly_the_table() -> None:
    declared = {opt: param.name for param in main.params for opt in param.opts}
    for option in PROFILE_OPTIONS:
        assert declared[option.flag] == option.field


def test_child_command_gives_every_field_but_the_address() -> None:
    profile = builtin("gunicorn-3-offload", timeout=0.1 + 0.2, model="none")
    argv = launch_command(profile, fd=9)
    for option in PROFILE_OPTIONS:
        assert (option.flag in argv) is (option.field not in ADDRESS_FIELDS), option.flag
    assert argv[argv.index("--timeout") + 1] == repr(0.1 + 0.2), "floats travel exactly"


def test_only_differences_from_the_named_profile() -> None:
    named = builtin("uvicorn-1-sync")
    assert profile_arguments(named, unless_same_in=named) == []
    changed = named.replace(workers=3, port=9000)
    assert profile_arguments(changed, unless_same_in=named) == ["--port", "9000", "--workers", "3"]
