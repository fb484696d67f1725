"""``launch systemd``: write a systemd unit that serves one profile.

The command gathers what only the machine can tell (where ``launch`` and its
Python are, which files define the profile, what the probe measured) and hands
it to the pure :func:`launcher.systemd.render_unit`. ``launcher.cli`` registers
it with ``main.add_command(systemd_command)``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import click

from launcher.cli._common import app_options, catalog_from, fail, fail_with, user_app_from
from launcher.errors import ConfigError, ExitCode, LaunchError
from launcher.systemd import DEFAULT_WATCHDOG_SECONDS, UnitOptions, read_paths, render_unit
from profiles import Profile, load_catalog
from profiles.catalog import DEFAULT_USER_FILE


@dataclass(frozen=True, kw_only=True)
class Deployment:
    """What a ``launch probe --json`` report recommends, checked for deployment."""

    profile: Profile
    source: Path | None
    ready_seconds: float | None
    why: str


def read_report(path: Path) -> Deployment:
    """The profile a ``launch probe --json`` report recommends; :class:`ConfigError` (one line) when unusable.

    The file is read by the one result reader (:func:`launcher.probe.model.read_run`), which
    also checks the recommended profile like a profiles file's; what a unit needs beyond a
    well-formed result is checked here: a recommendation at all, an absolute source.
    """
    from launcher.probe.model import ResultFileError, read_run

    try:
        run = read_run(path)
    except ResultFileError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    rec = run.recommendation
    if rec is None:
        raise ConfigError(f"{path}: the probe recommended no profile (none qualified); nothing to deploy")
    return Deployment(
        profile=rec.profile,
        source=_report_source(path, rec.source),
        ready_seconds=_report_ready(path, rec.ready_seconds),
        why=rec.why,
    )


def _report_source(path: Path, source: Any) -> Path | None:
    if source is None:
        return None
    if not isinstance(source, str) or not Path(source).is_absolute():
        raise ConfigError(f"{path}: recommendation.source = {source!r}: expected an absolute path or null")
    return Path(source)


def _report_ready(path: Path, ready: Any) -> float | None:
    if ready is None:
        return None
    if isinstance(ready, bool) or not isinstance(ready, (int, float)) or not math.isfinite(ready) or ready < 0:
        raise ConfigError(f"{path}: recommendation.ready_seconds = {ready!r}: expected seconds or null")
    return float(ready)


def find_launch(venv: Path | None) -> Path:
    """The ``launch`` executable the unit runs: the venv's, the running one, or the one on PATH."""
    if venv is not None:
        candidate = venv / "bin" / "launch"
        if not os.access(candidate, os.X_OK):
            raise ConfigError(f"--venv {venv}: no executable bin/launch in it (pip install the project there)")
        return candidate
    argv0 = Path(sys.argv[0])
    candidates = [argv0] if argv0.name == "launch" else []
    # The console script next to the running interpreter belongs to this very install.
    candidates.append(Path(sys.executable).parent / "launch")
    found = shutil.which("launch")
    if found:
        candidates.append(Path(found))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return Path(os.path.abspath(candidate))
    raise ConfigError("cannot find the `launch` executable; give --venv DIR (the virtualenv it is installed in)")


def script_interpreter(executable: Path) -> Path | None:
    """The interpreter of a ``#!`` script, symlinks followed; None for anything else."""
    try:
        with executable.open("rb") as handle:
            first = handle.readline(512)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    words = first[2:].decode(errors="replace").split()
    if not words or not words[0].startswith("/"):
        return None
    return Path(words[0]).resolve()


def editable_checkout(launch_path: Path) -> Path | None:
    """The checkout an editable install (``pip install -e``) of the venv of ``launch_path`` runs from; else None.

    The venv then holds only a pointer to the code (``direct_url.json``, PEP 610): the
    service reads the checkout too, wherever it is.
    """
    venv = Path(os.path.realpath(launch_path)).parent.parent
    for record in sorted(venv.glob("lib*/python*/site-packages/launch-*.dist-info/direct_url.json")):
        try:
            found = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(found, dict) or not isinstance(found.get("dir_info"), dict):
            continue
        url = urlparse(str(found.get("url", "")))
        if found["dir_info"].get("editable") is True and url.scheme == "file" and url.path.startswith("/"):
            return Path(unquote(url.path))
    return None


def unreadable_for_others(path: Path) -> Path | None:
    """The first folder on ``path`` that others cannot search, or ``path`` itself if they cannot read it."""
    try:
        resolved = path.resolve()
        for folder in reversed(resolved.parents):
            if not folder.stat().st_mode & stat.S_IXOTH:
                return folder
        mode = resolved.stat().st_mode
    except OSError:
        return path
    needed = stat.S_IXOTH if stat.S_ISDIR(mode) else stat.S_IROTH
    return None if mode & needed else resolved


def profile_files(ctx: click.Context, source: Path | None) -> tuple[Path, ...]:
    """The user files the unit must pass so ``--profile NAME`` resolves as here (up to the defining one)."""
    if source is None:
        return ()
    root = ctx.find_root()
    files = [Path(DEFAULT_USER_FILE)] if Path(DEFAULT_USER_FILE).is_file() else []
    files += list(root.params.get("profiles_file") or ())
    chosen: list[Path] = []
    for file in files:
        absolute = file.resolve()
        if absolute not in chosen:
            chosen.append(absolute)
        if absolute == source:
            return tuple(chosen)
    return (source,)


@click.command("systemd")
@click.option("--profile", "profile_name", metavar="NAME", help="Deploy this profile (see `launch profiles`).")
@click.option(
    "--from-report",
    "report",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="FILE",
    help="Deploy the profile a `launch probe --json` report recommends, with its measured start time.",
)
@click.option("--user", is_flag=True, help="A unit for `systemctl --user` instead of the system manager.")
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="PATH",
    help="Write the unit here instead of stdout.",
)
@click.option("--force", is_flag=True, help="Replace an existing --output file.")
@click.option(
    "--venv",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    metavar="DIR",
    help="The virtualenv launch is installed in (default: the running one).",
)
@click.option(
    "--workdir",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    metavar="DIR",
    help="The service's working directory.",
)
@click.option("--env", "env", multiple=True, metavar="KEY=VALUE", help="An environment variable (repeatable).")
@click.option("--gpu", is_flag=True, help="Open the NVIDIA devices (instead of PrivateDevices=).")
@click.option(
    "--watchdog",
    type=float,
    default=DEFAULT_WATCHDOG_SECONDS,
    show_default=True,
    metavar="SECONDS",
    help="WatchdogSec=; a worker event loop blocked for 1.25-2x this restarts the service (0: off).",
)
@app_options(
    app_help="Serve your own ASGI app under the profile.",
    app_dir_help="Import --app from this folder (default: --workdir, else the current folder).",
)
@click.pass_context
def systemd_command(
    ctx: click.Context,
    profile_name: str | None,
    report: Path | None,
    user: bool,
    output: Path | None,
    force: bool,
    venv: Path | None,
    workdir: Path | None,
    env: tuple[str, ...],
    gpu: bool,
    watchdog: float,
    app_target: str | None,
    factory: bool,
    app_dir: str | None,
) -> None:
    """Print (or write) a systemd service unit that serves a profile.

    \b
    launch systemd --profile gunicorn-3-offload -o /etc/systemd/system/launch.service
    launch systemd --from-report probe.json --user -o ~/.config/systemd/user/launch.service
    launch systemd --profile uvicorn-1-sync --app myservice.main:app --workdir /srv/myservice
    """
    if (profile_name is None) == (report is None):
        fail("give exactly one of --profile NAME and --from-report FILE", ExitCode.USAGE)
    if output is not None and output.exists() and not force:
        fail(f"{output} exists; --force replaces it", ExitCode.USAGE)
    named_app = user_app_from(app_target, factory, app_dir)
    venv = Path(os.path.abspath(venv)) if venv is not None else None
    workdir = Path(os.path.abspath(workdir)) if workdir is not None else None
    files: tuple[Path, ...]
    try:
        if report is not None:
            rec = read_report(report)
            profile, files = rec.profile, ((rec.source,) if rec.source else ())
            ready, note = rec.ready_seconds, f"Chosen by `launch probe`: {rec.why}" if rec.why else ""
        else:
            assert profile_name is not None
            catalog = catalog_from(ctx)
            profile = catalog.get_profile(profile_name)
            files = profile_files(ctx, catalog[profile_name].source)
            ready, note = None, ""
        # What `launch --profile NAME` will resolve to where the service runs.
        runtime_cwd = workdir or (Path.home() if user else Path("/"))
        named = load_catalog(files, cwd=runtime_cwd).get_profile(profile.name)
        if named.backend != profile.backend:
            raise ConfigError(
                f"profile {profile.name!r} is {named.backend} where the service runs, not {profile.backend}; "
                "deploy it from the profiles file that defines it"
            )
        user_app = None
        if named_app is not None:
            from launcher.userapp import check

            # The unit runs elsewhere (cwd /): it imports the app from an absolute folder, checked here.
            folder = Path(os.path.abspath(named_app.app_dir or workdir or Path.cwd()))
            user_app = dataclasses.replace(named_app, app_dir=str(folder))
            check(user_app)
        launch_path = find_launch(venv)
        options = UnitOptions(
            profile=profile,
            launch_path=launch_path,
            profiles_files=files,
            catalog_profile=named,
            user=user,
            venv=venv,
            workdir=workdir,
            env=env,
            gpu=gpu,
            watchdog_seconds=watchdog,
            ready_seconds=ready,
            interpreter=script_interpreter(launch_path),
            project=editable_checkout(launch_path),
            note=note,
            app=user_app,
        )
    except LaunchError as exc:
        fail_with(exc)
    if not user:
        for path in read_paths(options):
            blocked = unreadable_for_others(path)
            if blocked is not None:
                click.echo(
                    f"launch: warning: the service's transient user (DynamicUser=) cannot read {path} "
                    f"({blocked} is closed to other users); install under /opt or /srv, or use --user",
                    err=True,
                )
                break
    text = render_unit(options)
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"{output}: cannot write: {exc.strerror or exc}", ExitCode.USAGE)
    click.echo(f"launch: wrote {output}", err=True)
