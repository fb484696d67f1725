"""All profiles a run can use: built-ins plus TOML files, with ``extends`` resolved.

A user file holds one table per profile::

    [profiles.my-gpu]
    extends = "gunicorn-3-offload"
    timeout = 120
    limiter = 2

Unknown keys, wrong types, out-of-range values, unknown bases and cycles are
rejected with one line naming the file, the profile, the key and the value.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from profiles.builtin import builtin_profiles
from profiles.model import FIELDS, Profile, ProfileError

DEFAULT_USER_FILE = "launch.toml"
_ALLOWED_KEYS = frozenset(FIELDS) - {"name"} | {"extends"}


@dataclass(frozen=True, kw_only=True)
class ProfileEntry:
    """A resolved profile and where it was defined (None: built in)."""

    profile: Profile
    source: Path | None = None


class Catalog(Mapping[str, ProfileEntry]):
    """Name -> resolved profile, in definition order (built-ins first)."""

    def __init__(self, entries: Iterable[ProfileEntry]) -> None:
        self._entries = {entry.profile.name: entry for entry in entries}

    def __getitem__(self, name: str) -> ProfileEntry:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def get_profile(self, name: str) -> Profile:
        """The profile called ``name``; an unknown name suggests the closest ones."""
        entry = self._entries.get(name)
        if entry is None:
            raise ProfileError(unknown_name_message(name, self._entries))
        return entry.profile

    def select(self, spec: str | None) -> list[Profile]:
        """Profiles matching comma-separated names or globs (all when ``spec`` is empty)."""
        if not spec:
            return [entry.profile for entry in self._entries.values()]
        chosen: dict[str, Profile] = {}
        for part in (p.strip() for p in spec.split(",")):
            if not part:
                continue
            if any(ch in part for ch in "*?["):
                matches = [n for n in self._entries if fnmatch.fnmatchcase(n, part)]
                if not matches:
                    raise ProfileError(f"no profile matches {part!r}")
                for name in matches:
                    chosen.setdefault(name, self._entries[name].profile)
            else:
                chosen.setdefault(part, self.get_profile(part))
        if not chosen:
            raise ProfileError(f"no profile named in {spec!r}")
        return list(chosen.values())


def unknown_name_message(name: str, known: Iterable[str]) -> str:
    """``unknown profile 'x'`` with the closest known names, if any."""
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return f"unknown profile {name!r}{hint}"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read profiles file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ProfileError(f"{path}: invalid TOML: not UTF-8 (byte {exc.start})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # The message already carries "(at line L, column C)".
        raise ProfileError(f"{path}: invalid TOML: {exc}") from None


def parse_profiles_file(path: Path, bases: Mapping[str, ProfileEntry]) -> list[ProfileEntry]:
    """Read one TOML file and resolve its profiles against ``bases`` and each other."""
    data = _read_toml(path)
    unknown_top = sorted(set(data) - {"profiles"})
    if unknown_top:
        raise ProfileError(f"{path}: unknown top-level key {unknown_top[0]!r}: expected only [profiles.NAME] tables")
    tables = data.get("profiles", {})
    if not isinstance(tables, dict):
        raise ProfileError(f"{path}: 'profiles' must be a table of [profiles.NAME] tables")
    raw: dict[str, dict[str, Any]] = {}
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise ProfileError(f"{path}: profile {name!r}: expected a table, got {table!r}")
        for key, value in table.items():
            if key not in _ALLOWED_KEYS:
                close = difflib.get_close_matches(key, sorted(_ALLOWED_KEYS), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ProfileError(f"{path}: profile {name!r}: unknown key {key!r} = {value!r}{hint}")
        raw[name] = table

    resolved: dict[str, Profile] = {}

    def resolve(name: str, chain: tuple[str, ...]) -> Profile:
        if name in resolved:
            return resolved[name]
        table = raw[name]
        fields: dict[str, Any] = {}
        base_name = table.get("extends")
        if base_name is not None:
            if not isinstance(base_name, str):
                raise ProfileError(f"{path}: profile {name!r}: extends = {base_name!r}: expected a profile name")
            if base_name in chain or base_name == name:
                cycle = " -> ".join((*chain, name, base_name))
                raise ProfileError(f"{path}: profile {name!r}: extends = {base_name!r}: cycle {cycle}")
            if base_name in raw:
                base = resolve(base_name, (*chain, name))
            elif base_name in bases:
                base = bases[base_name].profile
            else:
                # Never suggest the profile itself: extending it would be a cycle.
                message = unknown_name_message(base_name, [n for n in (*bases, *raw) if n != name])
                raise ProfileError(f"{path}: profile {name!r}: extends: {message}")
            fields = base.to_dict()
            if base.description:
                fields["description"] = f"{base.description} (from {base.name})"
        fields.update({k: v for k, v in table.items() if k != "extends"})
        fields["name"] = name
        if "backend" not in fields:
            raise ProfileError(f"{path}: profile {name!r}: missing key 'backend' (or 'extends')")
        try:
            profile = Profile(**fields)
        except ProfileError as exc:
            raise ProfileError(f"{path}: profile {name!r}: {exc}") from None
        resolved[name] = profile
        return profile

    return [ProfileEntry(profile=resolve(name, ()), source=path.resolve()) for name in raw]


def load_catalog(files: Iterable[Path] = (), *, cwd: Path | None = None) -> Catalog:
    """Built-ins, then ``launch.toml`` in ``cwd`` if present, then ``files`` in order.

    A later definition of a name replaces an earlier one, so a user can
    redefine a built-in profile deliberately.
    """
    entries: dict[str, ProfileEntry] = {
        name: ProfileEntry(profile=profile) for name, profile in builtin_profiles().items()
    }
    paths: list[Path] = []
    local = (cwd or Path.cwd()) / DEFAULT_USER_FILE
    if local.is_file():
        paths.append(local)
    paths.extend(Path(f) for f in files)
    for path in paths:
        for entry in parse_profiles_file(path, entries):
            entries[entry.profile.name] = entry
    return Catalog(entries.values())


def profile_to_toml(profile: Profile) -> str:
    """The resolved profile as a ``[profiles.NAME]`` TOML table."""
    lines = [f"[profiles.{_toml_key(profile.name)}]"]
    for key, value in profile.to_dict().items():
        if key == "name":
            continue
        lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_TOML_ESCAPES = {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r", '"': '\\"', "\\": "\\\\"}


def _toml_key(key: str) -> str:
    # A dotted name such as "my.gpu" would otherwise open a nested table.
    return key if _BARE_KEY.fullmatch(key) else _toml_string(key)


def _toml_string(value: str) -> str:
    # A basic string: control characters must be escaped, or the TOML is invalid.
    out = []
    for ch in value:
        if ch in _TOML_ESCAPES:
            out.append(_TOML_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_value(value: Any) -> str:
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)
