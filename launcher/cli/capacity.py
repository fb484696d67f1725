"""``launch capacity``: open-loop arrival-rate sweeps that find each profile's knee at a p99 target."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from launcher import interrupts
from launcher.cli._common import app_options, catalog_from, console, fail, fail_with, user_app_from
from launcher.cli.compare import baseline_options, finish, read_baseline
from launcher.errors import ExitCode, LaunchError


@click.command()
@click.option("--profiles", "spec", metavar="SPEC", required=True, help="Comma-separated names or globs.")
@click.option(
    "--route",
    help="Path and query to GET: /generate (the default), /test1, /test2 or /ping, e.g. '/test2?seconds=0.2'; "
    "with --app, any GET route of the app (required).",
)
@click.option("--p99", "p99", default="2s", show_default=True, help="Latency target for the p99 (ms or s).")
@click.option(
    "--step-seconds",
    type=click.FloatRange(0, 300, min_open=True),
    default=5.0,
    show_default=True,
    help="How long each rate is held.",
)
@click.option("--start-rate", default="1/s", show_default=True, help="First rate of the geometric ramp.")
@click.option("--factor", type=click.FloatRange(1, 10, min_open=True), default=2.0, show_default=True)
@click.option("--max-rate", default="200/s", show_default=True, help="The ramp stops here.")
@click.option(
    "--bisections",
    type=click.IntRange(0, 10),
    default=4,
    show_default=True,
    help="Steps spent narrowing on the knee after the first miss.",
)
@click.option("--target-rate", help="Traffic to size for, e.g. 5/s or 300/min.")
@app_options(app_help="Sweep your own ASGI app instead of the reference service (with --route).")
@click.option("--model", help="Override every profile's model (tiny, none or a folder).")
@click.option("--timeout", "timeout", help="Per-request timeout (default: max(4 x p99, p99 + 5 s)).")
@click.option("--start-timeout", type=click.FloatRange(1), default=180.0, show_default=True)
@click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False), help="Write the full result.")
@click.option("--html", "html_path", type=click.Path(path_type=Path, dir_okay=False), help="Write the HTML chart.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines on stderr.")
@baseline_options
@click.pass_context
def capacity(
    ctx: click.Context,
    spec: str,
    route: str | None,
    p99: str,
    step_seconds: float,
    start_rate: str,
    factor: float,
    max_rate: str,
    bisections: int,
    target_rate: str | None,
    app_target: str | None,
    factory: bool,
    app_dir: str | None,
    model: str | None,
    timeout: str | None,
    start_timeout: float,
    json_path: Path | None,
    html_path: Path | None,
    quiet: bool,
    baseline_path: Path | None,
    fail_on: str,
    allow_different_machine: bool,
) -> None:
    """Find the arrival rate each profile sustains with p99 under the target, and size for a target rate.

    Requests are sent open-loop on a fixed schedule (never waiting for
    answers) to 127.0.0.1 only; latency counts from the scheduled send time.
    With --app, your own app is served under each profile and --route is any
    GET route of it (a route it does not have is exit 2 before any start).
    Exit status: 0 done, 5 a profile did not start, 2 usage error, 130 interrupted;
    with --baseline BASE.json, compare's (0, 1 a regression, 2 not comparable).
    """
    from launcher.capacity.model import CapacityRun, SearchPolicy, dump_run, parse_duration, parse_rate
    from launcher.capacity.report import render_html, render_run
    from launcher.capacity.runner import CapacityOptions, CapacityTarget, run_capacity
    from launcher.compare.model import ResultKind
    from launcher.probe.model import Status
    from launcher.probe.store import ResultWriteError, write_atomically

    catalog = catalog_from(ctx)
    app = user_app_from(app_target, factory, app_dir)
    if route is None:
        if app is not None:
            fail("--app needs --route PATH: the route of your app to load", ExitCode.USAGE)
        route = "/generate"
    baseline = read_baseline(baseline_path, ResultKind.CAPACITY)
    try:
        chosen = catalog.select(spec)
        targets = [
            CapacityTarget(profile=p.replace(model=model) if model else p, source=catalog[p.name].source)
            for p in chosen
        ]
        policy = SearchPolicy(
            start=parse_rate(start_rate), factor=factor, max_rate=parse_rate(max_rate), bisections=bisections
        )
        options = CapacityOptions(
            app=app,
            route=route if route.startswith("/") else "/" + route,
            target_s=parse_duration(p99),
            step_seconds=step_seconds,
            policy=policy,
            target_rate=parse_rate(target_rate) if target_rate else None,
            timeout_s=parse_duration(timeout) if timeout else None,
            start_timeout=start_timeout,
        )
    except LaunchError as exc:
        fail_with(exc)
    except ValueError as exc:  # SearchPolicy: start above max rate
        fail(f"--start-rate/--max-rate: {exc}", ExitCode.USAGE)
    for option, path in (("--json", json_path), ("--html", html_path)):
        if path is not None and path.parent and not path.parent.is_dir():
            fail(f"{option}: folder {str(path.parent)!r} does not exist", ExitCode.USAGE)

    def progress(line: str) -> None:
        if not quiet:
            click.echo(f"capacity: {line}", err=True)

    def write(run: CapacityRun) -> None:
        for option, path in (("--json", json_path), ("--html", html_path)):
            if path is None:
                continue
            try:
                write_atomically(path, dump_run(run) + "\n" if option == "--json" else render_html(run))
            except ResultWriteError as exc:
                fail_with(exc, f"{option}: ")

    # Ctrl-C and SIGTERM end the sweep in any phase: the server stopped, what was measured written (marked
    # incomplete); a checkpoint after every profile, so a signal during the final write keeps the last one.
    with interrupts.stop_signals():
        try:
            run = run_capacity(targets, options, progress=progress, on_profile=write)
        except KeyboardInterrupt:  # a signal in its last instructions: it keeps what it measured otherwise
            fail("interrupted", ExitCode.INTERRUPTED)
        except LaunchError as exc:  # --app that does not load, a --route it does not serve
            fail_with(exc)
        try:
            if run.complete:
                interrupts.reached("write")
            write(run)
            render_run(run, console())
        except KeyboardInterrupt:
            fail(
                "interrupted" + (f"; {json_path} holds the last checkpoint" if json_path else ""), ExitCode.INTERRUPTED
            )
        signalled = interrupts.stopped() is not None
    if not run.complete or signalled:
        fail("interrupted; partial results" + (f" written to {json_path}" if json_path else ""), ExitCode.INTERRUPTED)
    if baseline is not None:
        finish(
            baseline,
            run,
            label=str(json_path) if json_path else "this run",
            fail_on=fail_on,
            allow_different_machine=allow_different_machine,
        )
    if any(p.status != Status.OK for p in run.profiles):
        sys.exit(ExitCode.NOT_STARTED)
