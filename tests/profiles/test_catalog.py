"""The catalog: built-ins plus TOML files, ``extends`` resolved, errors on one line."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from profiles import Catalog, Profile, ProfileError, builtin_profiles, load_catalog
from profiles.catalog import profile_to_toml


@pytest.fixture
def empty_cwd(tmp_path: Path) -> Path:
    """A folder without launch.toml, so the caller's working directory never leaks in."""
    folder = tmp_path / "cwd"
    folder.mkdir()
    return folder


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def load(path: Path, cwd: Path) -> Catalog:
    return load_catalog([path], cwd=cwd)


def load_error(path: Path, cwd: Path) -> str:
    with pytest.raises(ProfileError) as info:
        load(path, cwd)
    message = str(info.value)
    assert "\n" not in message, message
    assert message.startswith(f"{path}: "), message
    return message


def test_builtins_only(empty_cwd: Path) -> None:
    catalog = load_catalog(cwd=empty_cwd)
    assert len(catalog) == 45
    assert list(catalog) == list(builtin_profiles())
    assert all(entry.source is None for entry in catalog.values())
    assert catalog.get_profile("gunicorn-3-async") == builtin_profiles()["gunicorn-3-async"]


def test_extends_a_builtin_and_overrides_fields(tmp_path: Path, empty_cwd: Path) -> None:
    path = write(
        tmp_path / "p.toml",
        """
[profiles.my-gpu]
extends = "gunicorn-3-offload"
timeout = 120
limiter = 2
concurrency_limit = 4
port = 0
model = "none"
""",
    )
    catalog = load(path, empty_cwd)
    assert len(catalog) == 46
    assert list(catalog)[-1] == "my-gpu"
    entry = catalog["my-gpu"]
    assert entry.source == path.resolve()
    base = builtin_profiles()["gunicorn-3-offload"]
    assert entry.profile == base.replace(
        name="my-gpu",
        timeout=120.0,
        limiter=2,
        concurrency_limit=4,
        port=0,
        model="none",
        description=f"{base.description} (from gunicorn-3-offload)",
    )


def test_own_description_replaces_the_inherited_one(tmp_path: Path, empty_cwd: Path) -> None:
    path = write(tmp_path / "p.toml", '[profiles.a]\nextends = "uvicorn-1-sync"\ndescription = "mine"\n')
    assert load(path, empty_cwd).get_profile("a").description == "mine"


@pytest.mark.parametrize("base_first", [True, False])
def test_extends_another_user_profile_in_either_order(tmp_path: Path, empty_cwd: Path, base_first: bool) -> None:
    base = '[profiles.base]\nextends = "hypercorn-1-async"\nworkers = 3\ntimeout = 60\n'
    child = '[profiles.child]\nextends = "base"\nmode = "offload"\nlimiter = 3\n'
    path = write(tmp_path / "p.toml", base + child if base_first else child + base)
    catalog = load(path, empty_cwd)
    parent = catalog.get_profile("base")
    assert (parent.backend, parent.workers, parent.timeout, parent.mode) == ("hypercorn", 3, 60.0, "async")
    profile = catalog.get_profile("child")
    assert profile == parent.replace(
        name="child", mode="offload", limiter=3, description=f"{parent.description} (from base)"
    )


def test_extends_a_profile_of_an_earlier_file(tmp_path: Path, empty_cwd: Path) -> None:
    first = write(tmp_path / "first.toml", '[profiles.base]\nbackend = "gunicorn"\nworkers = 2\n')
    second = write(tmp_path / "second.toml", '[profiles.child]\nextends = "base"\ntimeout = 5\n')
    catalog = load_catalog([first, second], cwd=empty_cwd)
    child = catalog["child"]
    assert (child.profile.backend, child.profile.workers, child.profile.timeout) == ("gunicorn", 2, 5.0)
    assert child.source == second.resolve()
    assert catalog["base"].source == first.resolve()


def test_profile_without_extends_uses_defaults(tmp_path: Path, empty_cwd: Path) -> None:
    path = write(tmp_path / "p.toml", '[profiles.plain]\nbackend = "hypercorn"\n')
    assert load(path, empty_cwd).get_profile("plain") == Profile(name="plain", backend="hypercorn")


def test_missing_backend_without_extends(tmp_path: Path, empty_cwd: Path) -> None:
    path = write(tmp_path / "p.toml", "[profiles.plain]\nworkers = 2\n")
    message = load_error(path, empty_cwd)
    assert message == f"{path}: profile 'plain': missing key 'backend' (or 'extends')"


def test_unknown_key_names_file_profile_key_value_and_suggests(tmp_path: Path, empty_cwd: Path) -> None:
    path = write(tmp_path / "p.toml", '[profiles.mine]\nextends = "uvicorn-1-sync"\nworker = 3\n')
    message = load_error(path, empty_cwd)
    assert message == f"{path}: profile 'mine': unknown key 'worker' = 3 (did you mean 'workers'?)"


def test_name_is_not_a_settable_key(tmp_path: Path, empty_cwd: Path) -> None:
    path = write(tmp_path / "p.toml", '[profiles.mine]\nbackend = "uvicorn"\nname = "other"\n')
    assert "profile 'mine': unknown key 'name' = 'other'" in load_error(path, empty_cwd)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('workers = "3"', "workers = '3': expected an integer"),
        ("workers = true", "workers = True: expected an integer"),
        ("workers = 2.0", "workers = 2.0: expected an integer"),
        ('timeout = "30s"', "timeout = '30s': expected a number of seconds"),
        ("port = 70000", "port = 70000: expected 0 to 65535"),
        ("concurrency_limit = 0", "concurrency_limit = 0: expected 1 to 1024"),
        ('mode = "fast"', "mode = 'fast': expected one of sync, async, offload"),
        ("host = [1, 2]", "host = [1, 2]: expected a string"),
    ],
)
def test_bad_value_names_file_profile_key_and_value(tmp_path: Path, empty_cwd: Path, line: str, expected: str) -> None:
    path = write(tmp_path / "p.toml", f'[profiles.mine]\nextends = "uvicorn-1-sync"\n{line}\n')
    assert load_error(path, empty_cwd) == f"{path}: profile 'mine': {expected}"


def test_extends_must_be_a_string(tmp_path: Path, empty_cwd: Path) -> None:
    path = write(tmp_path / "p.toml", "[profiles.mine]\nextends = 3\n")
    assert load_error(path, empty_cwd) == f"{path}: profile 'mine': extends = 3: expected a profile name"


def test_two_profile_cycle(tmp_path: Path, empty_cwd: Path) -> None:
    path = write(tmp_path / "p.toml", '[profiles.a]\nextends = "b"\n[profiles.b]\nextends = "a"\n')
    message = load_error(path, empty_cwd)
    assert message == f"{path}: profile 'b': extends = 'a': cycle a -> b -> a"


def test_self_cycle(tmp_path: Path, empty_cwd: Path) -> None:
    path = write(tmp_path / "p.toml", '[profiles.a]\nextends = "a"\n')
    assert load_error(path, empty_cwd) == f"{path}: profile 'a': extends = 'a': cycle a -> a"


def test_longer_cycle_reached_from_outside(tmp_path: Path, empty_cwd: Path) -> None:
    path = write(
        tmp_path / "p.toml",
        '[profiles.top]\nextends = "a"\n[profiles.a]\nextends = "b"\n[profiles.b]\nextends = "c"\n'
        '[profiles.c]\nextends = "a"\n',
    )
    message = load_error(path, empty_cwd)
    assert message.endswith("cycle top -> a -> b -> c -> a")


def test_unknown_base_suggests_close_names(tmp_path: Path, empty_cwd: Path) -> None:
    path = write(tmp_path / "p.toml", '[profiles.mine]\nextends = "gunicorn-3-ofload"\n')
    message = load_error(path, empty_cwd)
    assert message.startswith(f"{path}: profile 'mine': extends: unknown profile 'gunicorn-3-ofload'; did you mean ")
    assert "'gunicorn-3-offload'" in message


def test_unknown_base_suggests_user_profiles_too(tmp_path: Path, empty_cwd: Path) -> None:
    path = write(tmp_path / "p.toml", '[profiles.my-base]\nbackend = "uvicorn"\n[profiles.b]\nextends = "my-bsae"\n')
    assert "did you mean 'my-base'?" in load_error(path, empty_cwd)


def test_unknown_base_never_suggests_the_profile_itself(tmp_path: Path, empty_cwd: Path) -> None:
    path = write(tmp_path / "p.toml", '[profiles.my-gpu]\nextends = "my-gpu2"\n')
    assert load_error(path, empty_cwd) == f"{path}: profile 'my-gpu': extends: unknown profile 'my-gpu2'"


def test_unknown_base_far_from_everything_has_no_suggestion(tmp_path: Path, empty_cwd: Path) -> None:
    path = write(tmp_path / "p.toml", '[profiles.mine]\nextends = "zzzzzzzz"\n')
    assert load_error(path, empty_cwd) == f"{path}: profile 'mine': extends: unknown profile 'zzzzzzzz'"


def test_malformed_toml_reports_line_and_column(tmp_path: Path, empty_cwd: Path) -> None:
    path = write(tmp_path / "p.toml", '[profiles.mine]\nbackend = "uvicorn"\nworkers = = 3\n')
    message = load_error(path, empty_cwd)
    assert message.startswith(f"{path}: invalid TOML: ")
    assert re.search(r"\(at line 3, column \d+\)$", message), message


def test_non_utf8_file_is_a_profile_error(tmp_path: Path, empty_cwd: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_bytes(b'[profiles.mine]\nbackend = "uvicorn"\ndescription = "\xff"\n')
    assert load_error(path, empty_cwd).startswith(f"{path}: invalid TOML: not UTF-8")


def test_missing_file(tmp_path: Path, empty_cwd: Path) -> None:
    path = tmp_path / "absent.toml"
    assert load_error(path, empty_cwd) == f"{path}: cannot read profiles file: No such file or directory"


def test_unknown_top_level_key(tmp_path: Path, empty_cwd: Path) -> None:
    path = write(tmp_path / "p.toml", '[profile.mine]\nbackend = "uvicorn"\n')
    message = load_error(path, empty_cwd)
    assert message.startswith(f"{path}: unknown top-level key 'profile'")


def test_profiles_must_be_tables(tmp_path: Path, empty_cwd: Path) -> None:
    path = write(tmp_path / "p.toml", "profiles = 3\n")
    assert "'profiles' must be a table" in load_error(path, empty_cwd)
    path = write(tmp_path / "q.toml", "[profiles]\nmine = 3\n")
    assert load_error(path, empty_cwd) == f"{path}: profile 'mine': expected a table, got 3"


def test_bad_profile_name_in_file(tmp_path: Path, empty_cwd: Path) -> None:
    path = write(tmp_path / "p.toml", '[profiles."has space"]\nbackend = "uvicorn"\n')
    assert load_error(path, empty_cwd).startswith(f"{path}: profile 'has space': name = 'has space': ")


def test_empty_file_adds_nothing(tmp_path: Path, empty_cwd: Path) -> None:
    assert len(load(write(tmp_path / "p.toml", ""), empty_cwd)) == 45


def test_launch_toml_in_cwd_is_picked_up(tmp_path: Path) -> None:
    write(tmp_path / "launch.toml", '[profiles.local]\nextends = "uvicorn-3-sync"\n')
    catalog = load_catalog(cwd=tmp_path)
    assert catalog["local"].source == (tmp_path / "launch.toml").resolve()
    assert catalog.get_profile("local").workers == 3


def test_later_file_overrides_earlier(tmp_path: Path) -> None:
    write(tmp_path / "launch.toml", '[profiles.mine]\nbackend = "uvicorn"\nworkers = 2\n')
    extra = write(tmp_path / "extra.toml", '[profiles.mine]\nbackend = "hypercorn"\nworkers = 5\n')
    catalog = load_catalog([extra], cwd=tmp_path)
    assert len(catalog) == 46
    assert catalog["mine"].source == extra.resolve()
    assert (catalog.get_profile("mine").backend, catalog.get_profile("mine").workers) == ("hypercorn", 5)


def test_a_user_file_can_redefine_a_builtin(tmp_path: Path, empty_cwd: Path) -> None:
    path = write(tmp_path / "p.toml", '[profiles.uvicorn-1-sync]\nbackend = "uvicorn"\ntimeout = 5\n')
    catalog = load(path, empty_cwd)
    assert len(catalog) == 45
    assert next(iter(catalog)) == "uvicorn-1-sync"
    assert catalog.get_profile("uvicorn-1-sync").timeout == 5.0
    assert catalog["uvicorn-1-sync"].source == path.resolve()


def test_get_profile_unknown_suggests(empty_cwd: Path) -> None:
    catalog = load_catalog(cwd=empty_cwd)
    with pytest.raises(ProfileError, match=r"^unknown profile 'uvicorn-1-snyc'; did you mean 'uvicorn-1-sync'"):
        catalog.get_profile("uvicorn-1-snyc")
    with pytest.raises(ProfileError, match=r"^unknown profile 'q'$"):
        catalog.get_profile("q")


def test_select(empty_cwd: Path) -> None:
    catalog = load_catalog(cwd=empty_cwd)
    assert len(catalog.select(None)) == len(catalog.select("")) == 45
    assert [p.name for p in catalog.select("uvicorn-1-sync")] == ["uvicorn-1-sync"]
    assert [p.name for p in catalog.select("uvicorn-*-async")] == ["uvicorn-1-async", "uvicorn-3-async"]
    assert [p.name for p in catalog.select("*-3-sync, gunicorn-1-sync")] == [
        "uvicorn-3-sync",
        "gunicorn-3-sync",
        "hypercorn-3-sync",
        "granian-3-sync",
        "gunicorn-asgi-3-sync",
        "ray-3-sync",
        "ray-split-3-sync",
        "split-granian-3-sync",
        "gunicorn-1-sync",
    ]
    # '*' crosses '-': gunicorn-* also selects gunicorn-asgi; '?' keeps to one character.
    assert [p.name for p in catalog.select("gunicorn-?-sync")] == ["gunicorn-1-sync", "gunicorn-3-sync"]
    assert [p.name for p in catalog.select("gunicorn-*-1-sync")] == ["gunicorn-asgi-1-sync"]
    # Duplicates collapse, first mention wins the order; empty parts are skipped.
    assert [p.name for p in catalog.select("hypercorn-1-sync,,hypercorn-?-sync,")] == [
        "hypercorn-1-sync",
        "hypercorn-3-sync",
    ]
    assert len(catalog.select("*-[13]-offload")) == 16  # 14 of the matrix, 2 splits


def test_select_errors(empty_cwd: Path) -> None:
    catalog = load_catalog(cwd=empty_cwd)
    with pytest.raises(ProfileError, match=r"^unknown profile 'gunicorn-3-asnyc'; did you mean 'gunicorn-3-async'"):
        catalog.select("uvicorn-1-sync,gunicorn-3-asnyc")
    with pytest.raises(ProfileError, match=r"^no profile matches 'daphne-\*'$"):
        catalog.select("daphne-*")
    with pytest.raises(ProfileError, match=r"^no profile named in ' , '$"):
        catalog.select(" , ")


@pytest.mark.parametrize("name", sorted(builtin_profiles()))
def test_builtin_to_toml_round_trips(name: str) -> None:
    profile = builtin_profiles()[name]
    table = tomllib.loads(profile_to_toml(profile))["profiles"][name]
    assert Profile(name=name, **table) == profile


@pytest.mark.parametrize(
    "profile",
    [
        Profile(name="my.gpu", backend="gunicorn", workers=3, timeout=0.5, port=0, host="::1"),
        Profile(name="quotes", backend="uvicorn", description='say "hi" \\ C:\\path', model="/opt/models/sd"),
        Profile(name="ctrl", backend="hypercorn", description="line1\nline2\ttab\r\x01\x7f é ✓"),
    ],
)
def test_profile_to_toml_round_trips_awkward_values(profile: Profile) -> None:
    data = tomllib.loads(profile_to_toml(profile))
    assert list(data["profiles"]) == [profile.name]
    assert Profile(name=profile.name, **data["profiles"][profile.name]) == profile


def test_profile_to_toml_output_loads_as_a_profiles_file(tmp_path: Path, empty_cwd: Path) -> None:
    profile = Profile(name="a.b", backend="gunicorn", workers=2, description="x\ny", limiter=4)
    path = write(tmp_path / "p.toml", profile_to_toml(profile))
    assert load(path, empty_cwd).get_profile("a.b") == profile
