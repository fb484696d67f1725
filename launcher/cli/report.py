"""``launch report``: show a saved result again (a probe, an app's probe, a capacity sweep), or write it as HTML."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from launcher.cli._common import console, fail, fail_with
from launcher.errors import ExitCode, LaunchError

if TYPE_CHECKING:
    from rich.console import Console

    from launcher.compare.load import Run


@click.command()
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
@click.option("--json", "as_json", is_flag=True, help="Print the result (only --profiles, if given) as JSON.")
def report(file: Path, html_path: Path | None, spec: str | None, as_json: bool) -> None:
    """Show a saved result again, or write it as HTML; nothing is re-run.

    Reads what `launch probe --json`, `launch probe --app --json` and
    `launch capacity --json` write. With --profiles (probe results), the
    claims, the recommendation and the load decision are judged again over
    the profiles shown. Exit status: 0, or 2 when the file cannot be read, is
    not a launch result (truncated, foreign, newer schema) or SPEC matches none.
    """
    from launcher.compare.load import read
    from launcher.compare.model import ResultKind

    if html_path is not None and html_path.parent and not html_path.parent.is_dir():
        fail(f"--html: folder {str(html_path.parent)!r} does not exist", ExitCode.USAGE)
    try:
        loaded = read(file)
    except LaunchError as exc:
        fail_with(exc, f"{file}: ")
    if loaded.kind == ResultKind.CAPACITY and spec:
        fail("--profiles: a launch capacity result is shown whole (its sizing speaks of every profile)", ExitCode.USAGE)
    try:
        text, page, show = _renderers(loaded.run, spec)
    except LaunchError as exc:  # SPEC matches none of the file's profiles
        fail_with(exc, "--profiles: ")
    if html_path is not None:
        from launcher.probe.store import write_atomically

        try:
            write_atomically(html_path, page())
        except LaunchError as exc:
            fail_with(exc, "--html: ")
    if as_json:
        click.echo(text())
    elif html_path is None:
        show(console())


def _renderers(run: Run, spec: str | None) -> tuple[Callable[[], str], Callable[[], str], Callable[[Console], None]]:
    """The run (narrowed to ``spec``) as JSON text, as an HTML page, and printed: each kind by its own renderers."""
    from launcher.capacity import model as capacity_model
    from launcher.capacity import report as capacity_report
    from launcher.probe import appprobe, html
    from launcher.probe import report as probe_report
    from launcher.probe.judge import select_names, select_profiles
    from launcher.probe.model import ProbeRun, dump_run

    if isinstance(run, ProbeRun):
        probe = select_profiles(run, spec)
        return (
            (lambda: dump_run(probe)),
            (lambda: html.render_html(probe)),
            (lambda out: probe_report.render_run(probe, out)),
        )
    if isinstance(run, appprobe.AppProbeRun):
        app = (
            run
            if not spec
            else appprobe.select_app_profiles(run, select_names([p.profile for p in run.profiles], spec))
        )
        return (
            (lambda: json.dumps(appprobe.run_to_json(app), indent=2)),
            (lambda: html.render_app_html(app)),
            (lambda out: probe_report.render_app_run(app, out)),
        )
    capacity = run
    return (
        (lambda: capacity_model.dump_run(capacity)),
        (lambda: capacity_report.render_html(capacity)),
        (lambda out: capacity_report.render_run(capacity, out)),
    )
