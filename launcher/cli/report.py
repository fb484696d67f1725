"""``launch report``: show a saved probe result again, or write it as HTML."""

from __future__ import annotations

from pathlib import Path

import click

from launcher.cli._common import console, fail, fail_with
from launcher.cli.probe import write_results
from launcher.errors import ExitCode, LaunchError


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
    """Show a saved `launch probe --json` result again, or write it as HTML; nothing is re-run.

    With --profiles, the claims and the recommendation are judged again over
    the profiles shown. Exit status: 0, or 2 when the file cannot be read, is
    not a probe result (truncated, foreign, newer schema) or SPEC matches none.
    """
    from launcher.probe.judge import select_profiles
    from launcher.probe.model import ResultFileError, dump_run, read_run
    from launcher.probe.report import render_run

    try:
        run = select_profiles(read_run(file), spec)
    except ResultFileError as exc:
        fail_with(exc, f"{file}: ")
    except LaunchError as exc:  # select_profiles: SPEC matches none of the file's profiles
        fail_with(exc, "--profiles: ")
    if html_path is not None:
        if html_path.parent and not html_path.parent.is_dir():
            fail(f"--html: folder {str(html_path.parent)!r} does not exist", ExitCode.USAGE)
        try:
            write_results(run, json_path=None, html_path=html_path)
        except LaunchError as exc:
            fail_with(exc, "--html: ")
    if as_json:
        click.echo(dump_run(run))
    elif html_path is None:
        render_run(run, console())
