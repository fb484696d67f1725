"""Reading either file of a comparison: a probe result, an app probe result or a capacity result.

Each kind is read by its own reader (schema header, version check, migration),
so a file of a newer schema is refused here with that reader's one line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from launcher.capacity import model as capacity_model
from launcher.compare.model import NotComparableError, ResultKind
from launcher.probe import appprobe
from launcher.probe import model as probe_model
from launcher.probe.model import ResultFileError

Run = probe_model.ProbeRun | appprobe.AppProbeRun | capacity_model.CapacityRun


@dataclass(frozen=True, kw_only=True)
class Loaded:
    """One file of a comparison, read."""

    path: str
    kind: ResultKind
    run: Run
    version: int
    """The schema version of the file as written (0: an app probe result from before the header; -1: a run in
    memory, just measured, as ``--baseline`` compares it)."""


def kind_of(data: Any) -> ResultKind:
    """Which command wrote ``data`` (parsed JSON); :class:`ResultFileError` when none of them did."""
    schema = data.get("schema") if isinstance(data, dict) else None
    if schema == probe_model.SCHEMA:
        return ResultKind.PROBE
    if schema == capacity_model.SCHEMA:
        return ResultKind.CAPACITY
    if appprobe.is_app_run(data):
        return ResultKind.APP
    raise ResultFileError(
        "not a launch result (a launch probe, launch probe --app or launch capacity --json file)"
        + (f": schema {schema!r}" if isinstance(schema, str) else "")
    )


def read(path: Path) -> Loaded:
    """Read ``path`` as whichever result it is; :class:`ResultFileError` (one line, without the path) otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ResultFileError(f"not a launch result (not UTF-8 text at byte {exc.start})") from None
    except OSError as exc:
        raise ResultFileError(f"cannot read: {exc.strerror or type(exc).__name__}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultFileError(
            f"not valid JSON (line {exc.lineno}, column {exc.colno}, byte {exc.pos}): {exc.msg}"
        ) from None
    except RecursionError:
        raise ResultFileError("not a launch result (nested too deeply)") from None
    kind = kind_of(data)
    version = data.get("schema_version", 0)
    run: Run
    if kind == ResultKind.PROBE:
        run = probe_model.load_run(text)
    elif kind == ResultKind.CAPACITY:
        try:
            run = capacity_model.run_from_json(data)
        except capacity_model.CapacityFileError as exc:
            raise ResultFileError(str(exc)) from None
    else:
        run = appprobe.run_from_json(data)
    return Loaded(path=str(path), kind=kind, run=run, version=version if isinstance(version, int) else 0)


def read_pair(base: Path, new: Path) -> tuple[Loaded, Loaded]:
    """Both files, each read by its own reader.

    :class:`ResultFileError` names the file that cannot be read; :class:`NotComparableError` says when
    they are results of different commands.
    """
    loaded = []
    for path in (base, new):
        try:
            loaded.append(read(path))
        except ResultFileError as exc:
            raise ResultFileError(f"{path}: {exc}") from None
    first, second = loaded
    if first.kind != second.kind:
        raise NotComparableError(
            f"{first.path} is a {first.kind.command} result and {second.path} a {second.kind.command} result: "
            "not comparable"
        )
    return first, second
