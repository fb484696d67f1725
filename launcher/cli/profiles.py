"""``launch profiles``: list the profiles, or show one resolved as TOML."""

from __future__ import annotations

import dataclasses
import json

import click

from launcher.cli._common import catalog_from, console, fail_with
from launcher.errors import LaunchError
from profiles.catalog import profile_to_toml
from profiles.model import SPLIT_TOPOLOGY


@click.group(invoke_without_command=True)
@click.option(
    "--json", "as_json", is_flag=True, help="Print a JSON list: every field of every profile, and its source."
)
@click.pass_context
def profiles(ctx: click.Context, as_json: bool) -> None:
    """List the profiles (built-in and user)."""
    if ctx.invoked_subcommand is not None:
        if as_json:
            raise click.UsageError("--json is for the list; `launch profiles show NAME` prints TOML")
        return
    from rich.table import Table

    catalog = catalog_from(ctx)
    if as_json:
        rows = [
            {**dataclasses.asdict(entry.profile), "source": str(entry.source) if entry.source else None}
            for entry in catalog.values()
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=f"{len(catalog)} profiles")
    for column in ("name", "backend", "workers", "mode", "timeout", "limit", "limiter", "source"):
        table.add_column(column)
    for name, entry in catalog.items():
        p = entry.profile
        table.add_row(
            name,
            # The split topology's API backend, marked: its demo runs on uvicorn and Caddy is in front.
            f"{p.backend} (split)" if p.topology == SPLIT_TOPOLOGY else p.backend,
            str(p.workers),
            p.mode,
            f"{p.timeout:g}",
            str(p.concurrency_limit),
            str(p.limiter),
            str(entry.source) if entry.source else "built-in",
        )
    console().print(table)


@profiles.command("show")
@click.argument("name")
@click.pass_context
def profiles_show(ctx: click.Context, name: str) -> None:
    """Print one resolved profile as TOML."""
    try:
        profile = catalog_from(ctx).get_profile(name)
    except LaunchError as exc:
        fail_with(exc)
    click.echo(profile_to_toml(profile), nl=False)
