"""``launch compare BASE.json NEW.json``: a regression verdict between two runs, for CI.

Also what ``launch probe --baseline`` and ``launch capacity --baseline`` run
after measuring: :func:`read_baseline` before the run (a bad baseline is one
line before any server starts), :func:`finish` after it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, ParamSpec, TypeVar

import click

from launcher.cli._common import console, fail, fail_with
from launcher.errors import ExitCode, LaunchError

if TYPE_CHECKING:
    from launcher.compare.load import Loaded, Run
    from launcher.compare.model import Comparison, FailOn, ResultKind

P = ParamSpec("P")
R = TypeVar("R")

FAIL_ON_LEVELS = (
    "verdict (a verdict regressed), figure (also a figure worse outside the noise), "
    "any (anything changed outside the noise, improvements included)."
)
FAIL_ON_HELP = "What exits 1: " + FAIL_ON_LEVELS


def baseline_options(command: Callable[P, R]) -> Callable[P, R]:
    """``--baseline``, ``--fail-on`` and ``--allow-different-machine``, for a command that measures."""
    command = click.option(
        "--allow-different-machine", is_flag=True, help="With --baseline: compare a run of another machine."
    )(command)
    command = click.option(
        "--fail-on",
        type=click.Choice(["verdict", "figure", "any"]),
        default="verdict",
        show_default=True,
        help="With --baseline, what exits 1: " + FAIL_ON_LEVELS,
    )(command)
    return click.option(
        "--baseline",
        "baseline_path",
        type=click.Path(path_type=Path, dir_okay=False),
        metavar="BASE.json",
        help="Then compare the run with this earlier result (as launch compare) and exit with compare's code.",
    )(command)


def read_baseline(path: Path | None, kind: ResultKind) -> Loaded | None:
    """The baseline file, read and checked to be of ``kind``; exits 2 with one line when it is not."""
    if path is None:
        return None
    from launcher.compare.load import read
    from launcher.compare.model import NotComparableError

    try:
        loaded = read(path)
    except LaunchError as exc:
        fail_with(exc, f"--baseline: {path}: ")
    if loaded.kind != kind:
        why = f"{path} is a {loaded.kind.command} result and this run a {kind.command} run: not comparable"
        fail_with(NotComparableError(why))
    return loaded


def finish(
    baseline: Loaded,
    run: Run,
    *,
    label: str,
    fail_on: str,
    allow_different_machine: bool,
    html_path: Path | None = None,
) -> NoReturn:
    """Compare ``run`` (this run, called ``label``) with ``baseline``, print it, exit with compare's code."""
    from launcher.compare.load import Loaded
    from launcher.compare.model import FailOn
    from launcher.compare.render import render
    from launcher.compare.rules import compare

    loaded = Loaded(path=label, kind=baseline.kind, run=run, version=-1)
    level = FailOn(fail_on)
    try:
        comparison = compare(baseline, loaded, allow_different_machine=allow_different_machine)
    except LaunchError as exc:
        fail_with(exc, "--baseline: ")
    out = console()
    out.print()
    render(comparison, out, fail_on=level)
    if html_path is not None:
        _write_html_with(run, html_path, comparison, level)
    sys.exit(comparison.exit_code(level))


def _write_html_with(run: Run, html_path: Path, comparison: Comparison, level: FailOn) -> None:
    from launcher.compare.render import html_section
    from launcher.probe.appprobe import AppProbeRun
    from launcher.probe.html import render_app_html, render_html
    from launcher.probe.model import ProbeRun
    from launcher.probe.store import write_atomically

    section = html_section(comparison, fail_on=level)
    if isinstance(run, ProbeRun):
        page = render_html(run, comparison=section)
    elif isinstance(run, AppProbeRun):
        page = render_app_html(run, comparison=section)
    else:
        return  # a capacity run's HTML is written by its own command
    try:
        write_atomically(html_path, page)
    except LaunchError as exc:
        fail_with(exc, "--html: ")


@click.command()
@click.argument("base", metavar="BASE.json", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("new", metavar="NEW.json", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--fail-on",
    type=click.Choice(["verdict", "figure", "any"]),
    default="verdict",
    show_default=True,
    help=FAIL_ON_HELP,
)
@click.option("--allow-different-machine", is_flag=True, help="Compare runs of different machines anyway (marked).")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON (schema launch.compare).")
@click.option(
    "--html", "html_path", type=click.Path(path_type=Path, dir_okay=False), help="Also write it as an HTML page."
)
def compare(
    base: Path, new: Path, fail_on: str, allow_different_machine: bool, as_json: bool, html_path: Path | None
) -> None:
    """Did NEW make serving worse than BASE? Compare two results of launch probe, probe --app or capacity.

    Profiles are matched by name, scenarios and routes by label; verdict
    changes come first, then figures outside the noise the runs measured
    (their repeats' spreads, the recommendation's tie rule). Exit status:
    0 no regression, 1 a regression (at --fail-on), 2 the files cannot be
    read or compared (other kinds, a newer schema, other options, another
    machine without --allow-different-machine), with one line saying why.
    """
    from launcher.compare.load import read_pair
    from launcher.compare.model import FailOn
    from launcher.compare.render import dump, html_page, render
    from launcher.compare.rules import compare as compare_runs
    from launcher.probe.store import write_atomically

    level = FailOn(fail_on)
    if html_path is not None and html_path.parent and not html_path.parent.is_dir():
        fail(f"--html: folder {str(html_path.parent)!r} does not exist", ExitCode.USAGE)
    try:
        first, second = read_pair(base, new)
        comparison = compare_runs(first, second, allow_different_machine=allow_different_machine)
    except LaunchError as exc:
        fail_with(exc)
    if html_path is not None:
        try:
            write_atomically(html_path, html_page(comparison, fail_on=level))
        except LaunchError as exc:
            fail_with(exc, "--html: ")
    if as_json:
        click.echo(dump(comparison, fail_on=level))
    else:
        render(comparison, console(), fail_on=level)
    sys.exit(comparison.exit_code(level))
