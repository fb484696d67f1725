"""``launch probe``: start profiles, fire real bursts at them, judge and recommend."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from app.settings import MAX_SECONDS, MAX_STEPS
from launcher.child import DEFAULT_START_TIMEOUT
from launcher.cli._common import catalog_from, console, fail
from launcher.errors import ExitCode, LaunchError
from launcher.probe.runner import MAX_REQUESTS
from profiles import ProfileError

if TYPE_CHECKING:
    from launcher.probe.model import ProbeRun


@click.command()
@click.option("--profiles", "spec", metavar="SPEC", help="Comma-separated names or globs (default: all profiles).")
@click.option(
    "--scenarios",
    metavar="LIST",
    help="Comma-separated: sleep, cpu, generate, mixed, liveness, timeout (default: all).",
)
@click.option(
    "--requests", "-n", type=click.IntRange(1, MAX_REQUESTS), default=3, show_default=True, help="N per burst."
)
@click.option("--seconds", "-s", type=click.FloatRange(0, MAX_SECONDS, min_open=True), default=1.0, show_default=True)
@click.option("--seed-durations", is_flag=True, help="The write-up's 10 s sleeps and ~8 s CPU loops.")
@click.option(
    "--steps", type=click.IntRange(1, MAX_STEPS), default=4, show_default=True, help="Denoising steps per generation."
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
@click.option("--start-timeout", type=click.FloatRange(1), default=DEFAULT_START_TIMEOUT, show_default=True)
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
        with ProbeProgress(console(stderr=True), mode="off" if quiet else "auto") as display:
            run = run_probe(targets, options, progress=display.update)
    except KeyboardInterrupt:
        # Before the first profile (calibrating) or after the last one: nothing to report.
        fail("interrupted", ExitCode.INTERRUPTED)
    written = write_results(run, json_path=json_path, html_path=html_path)
    # Wide tables rather than wrapped ones when the output is a log, not a terminal.
    out = console()
    if claims_only:
        out.print(claims_table(run))
        out.print(recommendation_text(run))
    else:
        render_run(run, out)
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
