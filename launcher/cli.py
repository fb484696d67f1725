"""The ``launch`` command: a thin Click layer over the library.

It only converts options and calls library functions; library errors are
typed (:class:`launcher.errors.LaunchError`, :class:`profiles.ProfileError`)
and mapped here, and only here, to one-line messages and exit codes.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from app.settings import MODES
from launcher import __version__
from launcher.errors import ExitCode, LaunchError
from profiles import Catalog, Profile, ProfileError, load_catalog
from profiles.catalog import profile_to_toml

if TYPE_CHECKING:
    from launcher.probe.model import ProbeRun

F = TypeVar("F", bound=Callable[..., Any])
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def fail(message: str, code: int) -> NoReturn:
    """Print ``launch: error: message`` on stderr and exit with ``code``."""
    click.echo(f"launch: error: {message}", err=True)
    sys.exit(code)


def catalog_from(ctx: click.Context) -> Catalog:
    """The catalog for this invocation (built-ins, launch.toml, --profiles-file)."""
    root = ctx.find_root()
    cached = root.meta.get("launch.catalog")
    if isinstance(cached, Catalog):
        return cached
    files: tuple[Path, ...] = root.params.get("profiles_file") or ()
    try:
        catalog = load_catalog(files)
    except ProfileError as exc:
        fail(str(exc), ExitCode.USAGE)
    root.meta["launch.catalog"] = catalog
    return catalog


def profile_overrides(**values: Any) -> dict[str, Any]:
    """Options the user actually gave, as profile fields."""
    return {key: value for key, value in values.items() if value is not None}


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--profile", "profile_name", metavar="NAME", help="Serve this profile (see `launch profiles`).")
@click.option(
    "--profiles-file",
    type=click.Path(path_type=Path, dir_okay=False),
    multiple=True,
    help="TOML file of user profiles (repeatable); ./launch.toml is read when present.",
)
@click.option("--host", help="Bind address (default: the profile's, 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), help="Port (0: any free port).")
@click.option("--fd", type=click.IntRange(0), help="Serve on this inherited, listening socket.")
@click.option("--workers", type=click.IntRange(1, 64), help="Override the profile's worker count.")
@click.option("--mode", type=click.Choice(MODES), help="Override the handler mode.")
@click.option("--timeout", type=click.FloatRange(0, min_open=True), help="Override the timeout (seconds).")
@click.option("--concurrency-limit", type=click.IntRange(1), help="Override Gradio's concurrency_limit.")
@click.option("--limiter", type=click.IntRange(1), help="Override the offload limiter's capacity.")
@click.option("--model", help="'tiny', 'none' or a local diffusers pipeline folder.")
@click.option("--log-level", type=click.Choice(LOG_LEVELS), default="info", show_default=True)
@click.option("--access-log/--no-access-log", default=False, show_default=True)
@click.version_option(__version__, prog_name="launch")
@click.pass_context
def main(
    ctx: click.Context,
    profile_name: str | None,
    profiles_file: tuple[Path, ...],
    host: str | None,
    port: int | None,
    fd: int | None,
    workers: int | None,
    mode: str | None,
    timeout: float | None,
    concurrency_limit: int | None,
    limiter: int | None,
    model: str | None,
    log_level: str,
    access_log: bool,
) -> None:
    """Serve, probe and deploy a FastAPI + Gradio model service under named server profiles.

    \b
    launch --profile gunicorn-3-async     serve a profile in the foreground
    launch profiles                       list the profiles
    launch probe                          probe profiles and print verdicts
    """
    if ctx.invoked_subcommand is not None:
        serve_only = {
            "--profile": profile_name,
            "--host": host,
            "--port": port,
            "--fd": fd,
            "--workers": workers,
            "--mode": mode,
            "--timeout": timeout,
            "--concurrency-limit": concurrency_limit,
            "--limiter": limiter,
            "--model": model,
        }
        given = [name for name, value in serve_only.items() if value is not None]
        if given:
            raise click.UsageError(f"{given[0]} is for serving a profile; give it without a subcommand")
        return
    if profile_name is None:
        click.echo(ctx.get_help())
        ctx.exit(ExitCode.USAGE if ctx.args else ExitCode.OK)
    catalog = catalog_from(ctx)
    try:
        base = catalog.get_profile(profile_name)
        profile = base.replace(
            **profile_overrides(
                host=host,
                port=port,
                workers=workers,
                mode=mode,
                timeout=timeout,
                concurrency_limit=concurrency_limit,
                limiter=limiter,
                model=model,
            )
        )
    except ProfileError as exc:
        fail(str(exc), ExitCode.USAGE)
    serve_profile(profile, fd=fd, log_level=log_level, access_log=access_log)


def serve_profile(profile: Profile, *, fd: int | None, log_level: str, access_log: bool) -> None:
    """Serve in the foreground; print the URL once every worker is ready."""
    from launcher.server import ReadyInfo, ServeOptions, serve

    logging.basicConfig(level=log_level.upper(), format="launch: %(message)s")

    def announce(info: ReadyInfo) -> None:
        noun = "worker" if len(info.pids) == 1 else "workers"
        click.echo(
            f"launch: serving {profile.name} at {info.url} "
            f"({profile.backend}, {len(info.pids)} {noun} ready in {info.seconds:.2f} s; Ctrl-C stops)"
        )

    try:
        serve(ServeOptions(profile=profile, fd=fd, log_level=log_level, access_log=access_log), on_ready=announce)
    except LaunchError as exc:
        click.echo(f"launch: error: {exc}", err=True)
        fast_exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("launch: error: interrupted", err=True)
        fast_exit(ExitCode.INTERRUPTED)
    fast_exit(ExitCode.OK)


def fast_exit(code: int) -> NoReturn:
    """Exit without tearing down the interpreter's modules.

    With torch, diffusers and Gradio imported, module teardown takes seconds
    after the server has already stopped; a supervisor (systemd, the probe)
    would count that as a slow stop. Exit handlers still run, output is
    flushed, and every worker is already gone at this point.
    """
    import atexit
    import os

    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(int(code))


@main.group(invoke_without_command=True)
@click.pass_context
def profiles(ctx: click.Context) -> None:
    """List the profiles (built-in and user)."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.console import Console
    from rich.table import Table

    catalog = catalog_from(ctx)
    table = Table(title=f"{len(catalog)} profiles")
    for column in ("name", "backend", "workers", "mode", "timeout", "limit", "limiter", "source"):
        table.add_column(column)
    for name, entry in catalog.items():
        p = entry.profile
        table.add_row(
            name,
            p.backend,
            str(p.workers),
            p.mode,
            f"{p.timeout:g}",
            str(p.concurrency_limit),
            str(p.limiter),
            str(entry.source) if entry.source else "built-in",
        )
    Console().print(table)


@profiles.command("show")
@click.argument("name")
@click.pass_context
def profiles_show(ctx: click.Context, name: str) -> None:
    """Print one resolved profile as TOML."""
    try:
        profile = catalog_from(ctx).get_profile(name)
    except ProfileError as exc:
        fail(str(exc), ExitCode.USAGE)
    click.echo(profile_to_toml(profile), nl=False)


@main.command()
@click.option("--profiles", "spec", metavar="SPEC", help="Comma-separated names or globs (default: all profiles).")
@click.option(
    "--scenarios",
    metavar="LIST",
    help="Comma-separated: sleep, cpu, generate, mixed, liveness, timeout (default: all).",
)
@click.option("--requests", "-n", type=click.IntRange(1, 1000), default=3, show_default=True, help="N per burst.")
@click.option("--seconds", "-s", type=click.FloatRange(0, 120, min_open=True), default=1.0, show_default=True)
@click.option("--seed-durations", is_flag=True, help="The write-up's 10 s sleeps and ~8 s CPU loops.")
@click.option(
    "--steps", type=click.IntRange(1, 50), default=4, show_default=True, help="Denoising steps per generation."
)
@click.option("--concurrency-limit", type=click.IntRange(1), help="Override every profile's concurrency_limit.")
@click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False), help="Write the full result.")
@click.option(
    "--html",
    "html_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write a self-contained HTML report (also after Ctrl-C: partial, marked incomplete).",
)
@click.option("--keep-going/--fail-fast", default=True, show_default=True)
@click.option("--claims", "claims_only", is_flag=True, help="Print only the write-up's claims and the recommendation.")
@click.option("--start-timeout", type=click.FloatRange(1), default=180.0, show_default=True)
@click.option(
    "--quiet", "-q", is_flag=True, help="No progress (it goes to stderr: live on a terminal, lines otherwise)."
)
@click.pass_context
def probe(
    ctx: click.Context,
    spec: str | None,
    scenarios: str | None,
    requests: int,
    seconds: float,
    seed_durations: bool,
    steps: int,
    concurrency_limit: int | None,
    json_path: Path | None,
    html_path: Path | None,
    keep_going: bool,
    claims_only: bool,
    start_timeout: float,
    quiet: bool,
) -> None:
    """Start each profile, hit it the way real users do, and judge what happened.

    Exit status: 0 every expectation held, 1 some failed, 5 a profile did not
    start (and nothing failed), 2 usage error, 130 interrupted.
    """
    from rich.console import Console

    from launcher.probe.progress import ProbeProgress
    from launcher.probe.report import claims_table, recommendation_text, render_run
    from launcher.probe.runner import SCENARIOS, ProbeOptions, ProfileTarget, run_probe

    catalog = catalog_from(ctx)
    try:
        chosen = catalog.select(spec)
        targets = [
            ProfileTarget(
                profile=p.replace(concurrency_limit=concurrency_limit) if concurrency_limit else p,
                source=catalog[p.name].source,
            )
            for p in chosen
        ]
        names = tuple(s.strip() for s in scenarios.split(",") if s.strip()) if scenarios else SCENARIOS
        common: dict[str, Any] = {
            "scenarios": names,
            "requests": requests,
            "steps": steps,
            "fail_fast": not keep_going,
            "start_timeout": start_timeout,
        }
        options = ProbeOptions.seeded(**common) if seed_durations else ProbeOptions(seconds=seconds, **common)
    except (ProfileError, LaunchError) as exc:
        fail(str(exc), ExitCode.USAGE)
    for option, path in (("--json", json_path), ("--html", html_path)):
        if path is not None and path.parent and not path.parent.is_dir():
            fail(f"{option}: folder {str(path.parent)!r} does not exist", ExitCode.USAGE)
    try:
        with ProbeProgress(Console(stderr=True), mode="off" if quiet else "auto") as display:
            run = run_probe(targets, options, progress=display.update)
    except KeyboardInterrupt:
        # Before the first profile (calibrating) or after the last one: nothing to report.
        fail("interrupted", ExitCode.INTERRUPTED)
    written = write_results(run, json_path=json_path, html_path=html_path)
    # Wide tables rather than wrapped ones when the output is a log, not a terminal.
    console = Console() if sys.stdout.isatty() else Console(width=200)
    if claims_only:
        console.print(claims_table(run))
        console.print(recommendation_text(run))
    else:
        render_run(run, console)
    if not run.complete:
        fail("interrupted; partial results" + (f" written to {written}" if written else ""), ExitCode.INTERRUPTED)
    if any(p.status == "ok" and not p.passed for p in run.profiles):
        sys.exit(ExitCode.EXPECTATION_FAILED)
    if any(p.status != "ok" for p in run.profiles):
        sys.exit(ExitCode.NOT_STARTED)


def write_results(run: ProbeRun, *, json_path: Path | None, html_path: Path | None) -> str:
    """Write the result file and the HTML report asked for; returns their names, for messages."""
    from launcher.probe.html import render_html
    from launcher.probe.model import dump_run

    written = []
    for option, path, render in (("--json", json_path, dump_run), ("--html", html_path, render_html)):
        if path is None:
            continue
        try:
            path.write_text(render(run) + ("\n" if option == "--json" else ""), encoding="utf-8")
        except OSError as exc:
            fail(f"{option}: cannot write {str(path)!r}: {exc.strerror or exc}", ExitCode.USAGE)
        written.append(str(path))
    return " and ".join(written)


@main.command()
@click.argument("file", metavar="FILE.json", type=click.Path(path_type=Path))
@click.option(
    "--html",
    "html_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write a self-contained HTML report instead of printing the tables.",
)
@click.option(
    "--profiles", "spec", metavar="SPEC", help="Only these profiles of the file: comma-separated names or globs."
)
def report(file: Path, html_path: Path | None, spec: str | None) -> None:
    """Show a saved `launch probe --json` result again, or write it as HTML; nothing is re-run.

    With --profiles, the claims and the recommendation are judged again over
    the profiles shown. Exit status: 0, or 2 when the file cannot be read, is
    not a probe result (truncated, foreign, newer schema) or SPEC matches none.
    """
    from rich.console import Console

    from launcher.probe.model import ResultFileError, read_run
    from launcher.probe.report import render_run, select_profiles

    try:
        run = select_profiles(read_run(file), spec)
    except ResultFileError as exc:
        fail(f"{file}: {one_line(str(exc))}", ExitCode.USAGE)
    except LaunchError as exc:
        fail(f"--profiles: {one_line(str(exc))}", ExitCode.USAGE)
    if html_path is not None:
        if html_path.parent and not html_path.parent.is_dir():
            fail(f"--html: folder {str(html_path.parent)!r} does not exist", ExitCode.USAGE)
        write_results(run, json_path=None, html_path=html_path)
        return
    console = Console() if sys.stdout.isatty() else Console(width=200)
    render_run(run, console)


def one_line(message: str) -> str:
    """``message`` with any line breaks folded into spaces."""
    return " ".join(message.split())


def _register_subcommands() -> None:
    # Imported last: launcher.cli_systemd imports catalog_from and fail from this module.
    from launcher.cli_systemd import systemd_command

    main.add_command(systemd_command)


_register_subcommands()
