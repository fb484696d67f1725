"""What every ``launch`` command shares: one-line errors, the profile catalog, output that pipes.

Every error the library raises on purpose is a :class:`launcher.errors.LaunchError`
carrying its exit code; it becomes one line and that exit code here, in the CLI
layer, and nowhere else (:func:`fail_with`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click
from rich.console import Console

from launcher.errors import ExitCode, LaunchError, one_line
from profiles import Catalog, load_catalog

if TYPE_CHECKING:
    from launcher.userapp import AppSpec

F = TypeVar("F", bound=Callable[..., Any])

PIPE_WIDTH = 10_000
"""Columns a table may take when stdout is not a terminal: wide enough that nothing is cut or wrapped."""


def fail(message: str, code: int) -> NoReturn:
    """Print ``launch: error: message`` on stderr and exit with ``code``."""
    click.echo(f"launch: error: {message}", err=True)
    sys.exit(code)


def fail_with(exc: LaunchError, context: str = "") -> NoReturn:
    """:func:`fail` with ``exc`` on one line after ``context`` (such as ``"--html: "``), and its class's exit code."""
    fail(context + one_line(str(exc)), exc.exit_code)


def catalog_from(ctx: click.Context) -> Catalog:
    """The catalog for this invocation (built-ins, launch.toml, --profiles-file)."""
    root = ctx.find_root()
    cached = root.meta.get("launch.catalog")
    if isinstance(cached, Catalog):
        return cached
    files: tuple[Path, ...] = root.params.get("profiles_file") or ()
    try:
        catalog = load_catalog(files)
    except LaunchError as exc:
        fail_with(exc)
    root.meta["launch.catalog"] = catalog
    return catalog


def profile_overrides(**values: Any) -> dict[str, Any]:
    """Options the user actually gave, as profile fields."""
    return {key: value for key, value in values.items() if value is not None}


def console(*, stderr: bool = False) -> Console:
    """A console for tables: full width on a terminal; off one, rows are never truncated or wrapped.

    ``NO_COLOR`` (https://no-color.org) turns colour off; rich reads it too,
    stated here so that it holds whatever rich's default becomes.
    """
    stream = sys.stderr if stderr else sys.stdout
    no_color = bool(os.environ.get("NO_COLOR"))
    if stream.isatty():
        return Console(stderr=stderr, no_color=no_color)
    return Console(stderr=stderr, no_color=no_color, width=PIPE_WIDTH, soft_wrap=True)


APP_DIR_HELP = "Import --app from this folder (default: the working folder)."


def app_options(*, app_help: str, app_dir_help: str = APP_DIR_HELP) -> Callable[[F], F]:
    """``--app MODULE:ATTR``, ``--factory`` and ``--app-dir``, declared once for every command taking the user's app.

    The command gets ``app_target``, ``factory`` and ``app_dir`` and turns them into an
    :class:`launcher.userapp.AppSpec` with :func:`user_app_from`, which checks them the same way everywhere.
    """

    def decorate(command: F) -> F:
        command = click.option(
            "--app-dir", "app_dir", type=click.Path(file_okay=False, exists=True), help=app_dir_help
        )(command)
        command = click.option(
            "--factory", is_flag=True, help="--app names a factory: call it with no arguments to get the app."
        )(command)
        return click.option("--app", "app_target", metavar="MODULE:ATTR", help=app_help)(command)

    return decorate


def user_app_from(app_target: str | None, factory: bool, app_dir: str | None) -> AppSpec | None:
    """The user's app named by :func:`app_options`, or None; one line and exit 2 for a bad combination or target."""
    from launcher.userapp import AppSpec

    if app_target is None:
        if factory or app_dir is not None:
            fail("--factory and --app-dir go with --app MODULE:ATTR", ExitCode.USAGE)
        return None
    try:
        return AppSpec(target=app_target, factory=factory, app_dir=app_dir)
    except LaunchError as exc:
        fail_with(exc)
