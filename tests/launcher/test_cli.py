"""The ``launch`` command: listing and showing profiles, usage errors, exit codes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from launcher.cli import main
from launcher.errors import ExitCode
from profiles import Profile, builtin_profiles

pytestmark = pytest.mark.usefixtures("clean_cwd")  # never pick up a stray ./launch.toml

WIDE = {"COLUMNS": "200"}


def invoke(runner: CliRunner, *args: str) -> Result:
    return runner.invoke(main, list(args), env=WIDE)


def assert_one_line_error(result: Result, prefix: str) -> str:
    """Exit 2, one ``launch: error:`` line on stderr, no traceback; returns the message."""
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    assert lines[0].startswith(f"launch: error: {prefix}"), lines[0]
    return lines[0]


def test_profiles_lists_the_30_builtins(runner: CliRunner) -> None:
    result = invoke(runner, "profiles")
    assert result.exit_code == 0, result.output
    assert "45 profiles" in result.output
    for name in builtin_profiles():
        assert name in result.output
    assert result.output.count("built-in") == 45


def test_profiles_lists_user_profiles_with_their_source(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('[profiles.mine]\nextends = "gunicorn-3-offload"\ntimeout = 120\n', encoding="utf-8")
    result = runner.invoke(main, ["--profiles-file", str(path), "profiles"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    assert "46 profiles" in result.output
    row = next(line for line in result.output.splitlines() if " mine " in line)
    assert "gunicorn" in row and "offload" in row and "120" in row and str(path.resolve()) in row


def test_launch_toml_in_cwd_is_listed(runner: CliRunner, clean_cwd: Path) -> None:
    (clean_cwd / "launch.toml").write_text('[profiles.local]\nbackend = "hypercorn"\n', encoding="utf-8")
    result = invoke(runner, "profiles")
    assert result.exit_code == 0 and "46 profiles" in result.output and "local" in result.output


@pytest.mark.parametrize(
    "name", ["gunicorn-3-async", "uvicorn-1-sync", "hypercorn-3-offload", "granian-1-sync", "gunicorn-asgi-3-offload"]
)
def test_profiles_show_prints_toml_that_parses(runner: CliRunner, name: str) -> None:
    result = invoke(runner, "profiles", "show", name)
    assert result.exit_code == 0, result.output
    table = tomllib.loads(result.stdout)["profiles"][name]
    assert Profile(name=name, **table) == builtin_profiles()[name]


def test_profiles_show_user_profile(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('[profiles."my.gpu"]\nextends = "gunicorn-3-offload"\nlimiter = 2\n', encoding="utf-8")
    result = invoke(runner, "--profiles-file", str(path), "profiles", "show", "my.gpu")
    assert result.exit_code == 0, result.output
    table = tomllib.loads(result.stdout)["profiles"]["my.gpu"]
    assert table["limiter"] == 2 and table["workers"] == 3 and table["backend"] == "gunicorn"


def test_profiles_show_unknown_profile(runner: CliRunner) -> None:
    result = invoke(runner, "profiles", "show", "gunicorn-3-asynk")
    line = assert_one_line_error(result, "unknown profile 'gunicorn-3-asynk'; did you mean ")
    assert "'gunicorn-3-async'" in line
    assert result.stdout == ""


def test_serve_unknown_profile(runner: CliRunner) -> None:
    result = invoke(runner, "--profile", "uvicorn-1-snyc")
    line = assert_one_line_error(result, "unknown profile 'uvicorn-1-snyc'; did you mean ")
    assert "'uvicorn-1-sync'" in line


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[profiles.mine]\nbackend = "uvicorn"\nworkers = = 3\n', "invalid TOML: "),
        ('[profiles.mine]\nbackend = "uvicorn"\nwrokers = 3\n', "profile 'mine': unknown key 'wrokers' = 3"),
        ('[profiles.a]\nextends = "b"\n[profiles.b]\nextends = "a"\n', "profile 'b': extends = 'a': cycle"),
        ('[profiles.a]\nextends = "a"\n', "profile 'a': extends = 'a': cycle a -> a"),
        ('[profiles.a]\nextends = "uvicorn-1-sync"\nport = 70000\n', "profile 'a': port = 70000"),
        ("[other]\nx = 1\n", "unknown top-level key 'other'"),
    ],
    ids=["malformed", "unknown-key", "cycle", "self-cycle", "out-of-range", "top-level"],
)
@pytest.mark.parametrize(
    "command", [["profiles"], ["profiles", "show", "uvicorn-1-sync"], ["--profile", "uvicorn-1-sync"]]
)
def test_bad_profiles_file(runner: CliRunner, tmp_path: Path, text: str, expected: str, command: list[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    result = invoke(runner, "--profiles-file", str(path), *command)
    line = assert_one_line_error(result, f"{path}: ")
    assert expected in line
    assert result.stdout == ""


def test_non_utf8_profiles_file(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes(b"\xff\xfe[profiles]\n")
    result = invoke(runner, "--profiles-file", str(path), "profiles")
    assert "not UTF-8" in assert_one_line_error(result, f"{path}: invalid TOML")


def test_missing_profiles_file(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    result = invoke(runner, "--profiles-file", str(path), "profiles")
    line = assert_one_line_error(result, f"{path}: cannot read profiles file")
    assert "No such file or directory" in line


def test_bad_launch_toml_in_cwd(runner: CliRunner, clean_cwd: Path) -> None:
    (clean_cwd / "launch.toml").write_text("[profiles.x]\nworkers = 2\n", encoding="utf-8")
    result = invoke(runner, "profiles")
    assert "missing key 'backend'" in assert_one_line_error(result, f"{clean_cwd / 'launch.toml'}: ")


def test_profile_with_a_subcommand_is_a_usage_error(runner: CliRunner) -> None:
    result = invoke(runner, "--profile", "uvicorn-1-sync", "profiles")
    assert result.exit_code == 2
    assert "--profile is for serving a profile; give it without a subcommand" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["--workers", "0"],
        ["--workers", "65"],
        ["--port", "70000"],
        ["--timeout", "0"],
        ["--mode", "fast"],
        ["--limiter", "0"],
        ["--concurrency-limit", "0"],
        ["--log-level", "loud"],
    ],
)
def test_bad_option_is_a_usage_error(runner: CliRunner, args: list[str]) -> None:
    result = invoke(runner, "--profile", "uvicorn-1-sync", *args)
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{args[0]}'" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--host", "example.com"], "host = 'example.com': expected an IP address or 'localhost'"),
        (["--timeout", "100000"], "timeout = 100000.0: expected more than 0 and at most 86400 seconds"),
        (["--limiter", "2000"], "limiter = 2000: expected 1 to 1024"),
        (["--model", ""], "model = '': expected 'tiny', 'none' or a folder"),
    ],
)
def test_override_the_profile_rejects_is_a_usage_error(runner: CliRunner, args: list[str], expected: str) -> None:
    result = invoke(runner, "--profile", "uvicorn-1-sync", *args)
    assert assert_one_line_error(result, "") == f"launch: error: {expected}"


def test_no_arguments_prints_help(runner: CliRunner) -> None:
    result = invoke(runner)
    assert result.exit_code == 0
    assert "Usage:" in result.output and "--profile NAME" in result.output


def test_version(runner: CliRunner) -> None:
    result = invoke(runner, "--version")
    assert result.exit_code == 0 and result.output.startswith("launch, version ")


@pytest.mark.e2e
def test_port_in_use_exits_4_naming_the_port(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "launcher", "--profile", "uvicorn-1-sync", "--model", "none", "--port", str(port)],
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
        )
    assert result.returncode == 4, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines, "nothing on stderr"
    assert lines[-1] == f"launch: error: port {port} on 127.0.0.1 is already in use"


def test_profiles_json_lists_every_field_of_every_profile(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text('[profiles.mine]\nextends = "gunicorn-3-offload"\nlimiter = 2\n')
    result = invoke(runner, "--profiles-file", str(path), "profiles", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [row["name"] for row in rows] == [*builtin_profiles(), "mine"]
    mine = rows[-1]
    assert mine["source"] == str(path) and mine["limiter"] == 2 and mine["backend"] == "gunicorn"
    assert {row["source"] for row in rows[:-1]} == {None}
    rebuilt = Profile(**{k: v for k, v in mine.items() if k != "source"})  # every field, right types
    assert rebuilt.replace(description="") == builtin_profiles()["gunicorn-3-offload"].replace(
        name="mine", limiter=2, description=""
    )


def test_profiles_off_a_terminal_shows_every_name_whole(runner: CliRunner) -> None:
    # A narrow COLUMNS is what truncated names to "uvicor…" before: off a terminal, rows are never cut.
    result = runner.invoke(main, ["profiles"], env={"COLUMNS": "40"})
    assert result.exit_code == 0, result.output
    for name in builtin_profiles():
        assert any(name in line.split() for line in result.stdout.splitlines()), name
    assert "…" not in result.stdout


@pytest.mark.e2e
def test_profiles_piped_to_other_tools() -> None:
    """`launch profiles | grep NAME` finds every name; `--json` parses with `python -m json.tool`."""
    launch = [sys.executable, "-m", "launcher", "profiles"]
    listed = subprocess.run(
        launch, capture_output=True, text=True, check=True, timeout=60, env={**os.environ, "COLUMNS": "40"}
    )
    for name in builtin_profiles():
        assert name in listed.stdout.split(), name
    as_json = subprocess.run([*launch, "--json"], capture_output=True, check=True, timeout=60)
    tool = subprocess.run(
        [sys.executable, "-m", "json.tool"], input=as_json.stdout, capture_output=True, timeout=60, check=False
    )
    assert tool.returncode == 0, tool.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("--profile", "uvicorn-1-sync", "--factory"),
        ("probe", "--app-dir", "."),
        ("systemd", "--profile", "uvicorn-1-sync", "--factory"),
    ],
    ids=["serve", "probe", "systemd"],
)
def test_factory_or_app_dir_without_app_is_the_same_one_line_everywhere(
    runner: CliRunner, args: tuple[str, ...]
) -> None:
    """The --app option group is declared once (cli._common.app_options) and checked once (user_app_from)."""
    result = invoke(runner, *args)
    assert_one_line_error(result, "--factory and --app-dir go with --app MODULE:ATTR")


@pytest.mark.parametrize("command", [(), ("probe",), ("systemd",)], ids=["serve", "probe", "systemd"])
def test_every_command_taking_an_app_declares_the_same_options(runner: CliRunner, command: tuple[str, ...]) -> None:
    result = invoke(runner, *command, "--help")
    assert result.exit_code == 0
    for option in ("--app MODULE:ATTR", "--factory", "--app-dir DIRECTORY"):
        assert option in result.output, (command, option)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--seconds", "2", "--steps", "2"], "--seconds, --steps"),
        (["--claims"], "--claims"),
        (["--resume", "old.json", "--force"], "--resume, --force"),
    ],
)
def test_reference_only_probe_options_with_app_are_rejected_not_dropped(args: list[str], named: str) -> None:
    """The scenario file decides what these decide for the reference service: one line, exit 2, before any start."""
    result = CliRunner().invoke(
        main, ["probe", "--app", "examples.shop:app", "--scenarios", "examples/shop.toml", *args]
    )
    assert result.exit_code == ExitCode.USAGE, result.output
    (line,) = result.output.strip().splitlines()
    assert f"{named}: not with --app" in line
