"""A comparison as terminal tables, as JSON and as an HTML section.

Changes come first (verdicts, then figures outside the noise), then what only
one run holds, then the profiles that did not change, in one line.
"""

from __future__ import annotations

import dataclasses
import html
import json
from typing import Any

from rich.console import Console
from rich.table import Table

from launcher.compare.model import SCHEMA, SCHEMA_VERSION, Change, Comparison, Direction, FailOn, FigureChange

_STYLE = {Direction.REGRESSION: "red", Direction.IMPROVEMENT: "green", Direction.CHANGED: "yellow"}


def _figure(value: FigureChange, which: str) -> str:
    f = value.base if which == "base" else value.new
    spread = f" ±{f.spread / 2:.3g}" if f.spread else ""
    return f"{f.median:.3g}{spread} {value.unit}"


def figure_text(value: FigureChange) -> str:
    """``0.317 ±0.0125 s -> 1.2 ±0.0005 s (+281%; noise: medians within 0.0317 s)`` (± half the spread)."""
    change = (value.new.median - value.base.median) / value.base.median if value.base.median else 0.0
    return (
        f"{_figure(value, 'base')} -> {_figure(value, 'new')} ({change:+.0%}; noise: medians within "
        f"{value.slack:.3g} {value.unit})"
    )


def verdict_line(comparison: Comparison, fail_on: FailOn) -> str:
    """The last line: what the comparison found and the exit code it gives."""
    failing = comparison.failing(fail_on)
    regressions = [c for c in comparison.changes if c.direction == Direction.REGRESSION]
    worse = [f for f in comparison.figure_changes if f.direction == Direction.REGRESSION]
    found = f"{len(regressions)} verdict regression(s), {len(worse)} figure(s) worse outside noise"
    if failing:
        return f"REGRESSION (--fail-on {fail_on}): {found}; exit {comparison.exit_code(fail_on)}"
    return f"no regression (--fail-on {fail_on}): {found}; exit 0"


def _who(change: Change) -> str:
    return change.profile or "(run)"


def render(comparison: Comparison, out: Console, *, fail_on: FailOn = FailOn.VERDICT) -> None:
    """Print the comparison: header, verdict changes, figure changes, the rest in a line each."""
    out.print(f"launch compare: {comparison.base} -> {comparison.new} ({comparison.kind} results)", highlight=False)
    for note in comparison.notes:
        out.print(f"note: {note}", highlight=False, style="bold yellow" if "DIFFERENT" in note else None)
    if comparison.changes:
        table = Table(title="verdict changes", title_justify="left")
        for column in ("change", "profile", "what", "base", "new", "evidence"):
            table.add_column(column, overflow="fold")
        for change in comparison.changes:
            table.add_row(
                f"[{_STYLE[change.direction]}]{change.direction.upper()}[/]",
                _who(change),
                change.subject,
                change.base,
                change.new,
                change.why,
            )
        out.print(table)
    else:
        out.print("verdict changes: none", highlight=False)
    changed = comparison.figure_changes
    if changed:
        table = Table(title="figure changes (outside noise)", title_justify="left")
        for column in ("change", "profile", "figure", "base -> new"):
            table.add_column(column, overflow="fold")
        for value in changed:
            assert value.direction is not None
            table.add_row(
                f"[{_STYLE[value.direction]}]{value.direction.upper()}[/]",
                value.profile,
                value.subject,
                figure_text(value),
            )
        out.print(table)
    same = len(comparison.figures) - len(changed)
    out.print(
        f"figures: {len(changed)} changed, {same} same within noise (rule: {comparison.noise_rule}"
        + "".join(f"; {rule}" for rule in comparison.figure_rules.values())
        + ")",
        highlight=False,
    )
    if comparison.only_in_base:
        out.print(f"only in {comparison.base}: {', '.join(comparison.only_in_base)}", highlight=False)
    if comparison.only_in_new:
        out.print(f"only in {comparison.new}: {', '.join(comparison.only_in_new)}", highlight=False)
    unchanged = comparison.unchanged_profiles
    out.print(
        f"unchanged ({len(unchanged)} of {len(comparison.profiles)} profiles): {', '.join(unchanged) or 'none'}",
        highlight=False,
    )
    out.print(verdict_line(comparison, fail_on), highlight=False, style="bold")


def to_json(comparison: Comparison, *, fail_on: FailOn = FailOn.VERDICT) -> dict[str, Any]:
    """The comparison as JSON data (schema ``launch.compare``), with its exit code at ``fail_on``."""
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        **dataclasses.asdict(comparison),
        "unchanged_profiles": list(comparison.unchanged_profiles),
        "fail_on": str(fail_on),
        "regression": bool(comparison.failing(fail_on)),
        "exit_code": comparison.exit_code(fail_on),
    }


def dump(comparison: Comparison, *, fail_on: FailOn = FailOn.VERDICT) -> str:
    """:func:`to_json` as text."""
    return json.dumps(to_json(comparison, fail_on=fail_on), indent=1)


_HTML_CLASS = {Direction.REGRESSION: "bad", Direction.IMPROVEMENT: "good", Direction.CHANGED: "changed"}


def html_section(comparison: Comparison, *, fail_on: FailOn = FailOn.VERDICT) -> str:
    """The comparison as one ``<section>`` for the probe's HTML report (its stylesheet, plus a few rules here)."""
    e = html.escape
    rows = "".join(
        f'<tr class="{_HTML_CLASS[c.direction]}"><td>{e(c.direction.upper())}</td><td>{e(_who(c))}</td>'
        f"<td>{e(c.subject)}</td><td>{e(c.base)}</td><td>{e(c.new)}</td><td>{e(c.why)}</td></tr>"
        for c in comparison.changes
    )
    figures = "".join(
        f'<tr class="{_HTML_CLASS[f.direction]}"><td>{e(f.direction.upper())}</td><td>{e(f.profile)}</td>'
        f"<td>{e(f.subject)}</td><td>{e(figure_text(f))}</td></tr>"
        for f in comparison.figure_changes
        if f.direction is not None
    )
    parts = [
        '<section id="comparison"><h2>Compared with the baseline</h2>',
        "<style>#comparison .bad td:first-child{color:#b00020;font-weight:bold}"
        "#comparison .good td:first-child{color:#1b7f3b;font-weight:bold}"
        "#comparison .changed td:first-child{color:#8a6d00}</style>",
        f"<p>{e(comparison.base)} &rarr; {e(comparison.new)} ({e(str(comparison.kind))} results).</p>",
        *(f"<p><b>note:</b> {e(note)}</p>" for note in comparison.notes),
        "<table><tr><th>change</th><th>profile</th><th>what</th><th>base</th><th>new</th><th>evidence</th></tr>"
        + rows
        + "</table>"
        if rows
        else "<p>Verdict changes: none.</p>",
        "<table><tr><th>change</th><th>profile</th><th>figure</th><th>base &rarr; new</th></tr>" + figures + "</table>"
        if figures
        else "",
        f"<p>Figures: {len(comparison.figure_changes)} changed, "
        f"{len(comparison.figures) - len(comparison.figure_changes)} same within noise (rule: "
        f"{e(comparison.noise_rule)}).</p>",
        f"<p>Unchanged: {e(', '.join(comparison.unchanged_profiles) or 'none')}.</p>",
        f"<p><b>{e(verdict_line(comparison, fail_on))}</b></p></section>",
    ]
    return "".join(parts)


def html_page(comparison: Comparison, *, fail_on: FailOn = FailOn.VERDICT) -> str:
    """:func:`html_section` as a self-contained page (``launch compare --html``)."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"/><title>launch compare</title>'
        "<style>body{font-family:system-ui,sans-serif;margin:1.5em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top}</style></head><body>"
        "<h1>launch compare</h1>\n" + html_section(comparison, fail_on=fail_on) + "\n</body></html>\n"
    )
