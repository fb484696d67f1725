"""Render a probe run for people: rich tables per profile, a matrix, claims, the recommendation."""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Sequence

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from launcher.errors import ConfigError
from launcher.probe import metrics
from launcher.probe.model import ProbeRun, ProfileResult, ResultFileError

_VERDICT_STYLE = {"CONFIRMED": "green", "REFUTED": "red", "DEPENDS": "yellow", "UNTESTED": "dim"}


def _mark(passed: bool) -> Text:
    return Text("PASS", style="bold green") if passed else Text("FAIL", style="bold red")


def profile_table(result: ProfileResult) -> RenderableType:
    """Expectations of one profile with PASS/FAIL."""
    title = f"{result.name} — {result.profile.get('description', '')}"
    if result.status != "ok":
        body = Text(f"{result.status.upper()}: {result.error or ''}\n{result.log_tail}", style="red")
        return Group(Text(title, style="bold"), body)
    table = Table(title=title, title_justify="left", expand=True)
    table.add_column("scenario", no_wrap=True)
    table.add_column("expectation", ratio=3)
    table.add_column("observed", ratio=3)
    table.add_column("", no_wrap=True)
    table.add_column("why", ratio=2)
    for verdict in result.verdicts:
        table.add_row(verdict.scenario, verdict.expectation, verdict.observed, _mark(verdict.passed), verdict.why)
    extra = f"ready in {result.ready_seconds:.2f}s" if result.ready_seconds else ""
    if result.stop_seconds is not None:
        extra += f", stopped in {result.stop_seconds:.2f}s" + (" (forced)" if result.stop_forced else "")
    return Group(table, Text(extra, style="dim"))


def matrix_table(results: Sequence[ProfileResult]) -> Table:
    """Profile x scenario: makespan, overlap, health p99, errors, verdict."""
    scenarios: list[str] = []
    for result in results:
        for s in result.scenarios:
            if s.scenario not in scenarios:
                scenarios.append(s.scenario)
    table = Table(title="summary: makespan s / max overlap / health p99 ms / errors", title_justify="left")
    table.add_column("profile", no_wrap=True)
    table.add_column("ready s", justify="right")
    for name in scenarios:
        table.add_column(name, justify="right")
    table.add_column("verdict")
    for result in results:
        cells: list[RenderableType] = [result.name, f"{result.ready_seconds:.1f}" if result.ready_seconds else "-"]
        by_name = {s.scenario: s for s in result.scenarios}
        for name in scenarios:
            found = by_name.get(name)
            if found is None:
                cells.append("-")
                continue
            figures = metrics.summary(found.records)
            errors = sum(figures["errors"].values()) if isinstance(figures["errors"], dict) else 0
            ok = all(v.passed for v in found.verdicts)
            cells.append(
                Text(
                    f"{figures['makespan_s']:.2f} / {figures['overlap']} / {figures['health_p99_ms']:.0f} / {errors}",
                    style="" if ok else "red",
                )
            )
        verdict: RenderableType = _mark(result.passed) if result.status == "ok" else Text(result.status, style="red")
        cells.append(verdict)
        table.add_row(*cells)
    return table


def claims_table(run: ProbeRun) -> Table:
    """The write-up's claims with CONFIRMED/REFUTED/DEPENDS and evidence."""
    table = Table(title="the write-up's claims", title_justify="left", expand=True)
    table.add_column("#", justify="right")
    table.add_column("claim", ratio=2)
    table.add_column("verdict", no_wrap=True)
    table.add_column("evidence", ratio=3)
    for claim in run.claims:
        table.add_row(
            str(claim.number),
            claim.text,
            Text(claim.verdict, style=_VERDICT_STYLE.get(claim.verdict, "")),
            claim.evidence,
        )
    return table


def recommendation_text(run: ProbeRun) -> Text:
    """The recommendation, or why there is none."""
    rec = run.recommendation
    if rec is None:
        return Text("No profile qualifies for a recommendation in this run.", style="yellow")
    text = Text()
    text.append("Recommended: ", style="bold")
    text.append(str(rec.profile.get("name", "?")), style="bold green")
    text.append(f" — {rec.why}.\n")
    for name, reason in rec.rejected.items():
        text.append(f"  {name}: {reason}\n", style="dim")
    return text


def render_run(run: ProbeRun, console: Console, *, claims: bool = True, details: bool = True) -> None:
    """Print the whole report."""
    if details:
        for result in run.profiles:
            console.print(profile_table(result))
    console.print(matrix_table(run.profiles))
    if claims and run.claims:
        console.print(claims_table(run))
    console.print(recommendation_text(run))
    if not run.complete:
        console.print(Text("INCOMPLETE: the run was interrupted; results so far are shown.", style="bold yellow"))


def select_profiles(run: ProbeRun, spec: str | None) -> ProbeRun:
    """The run narrowed to the profiles ``spec`` names: comma-separated names or globs (fnmatch), in file order.

    The claims and the recommendation are judged again over the profiles
    kept, so that every part of the report speaks of the same profiles.
    :class:`ConfigError` names a part that matches no profile of the run;
    :class:`ResultFileError` says the file's profiles cannot be judged.
    """
    if not spec:
        return run
    names = [p.name for p in run.profiles]
    keep: set[str] = set()
    for part in (part.strip() for part in spec.split(",")):
        if not part:
            continue
        glob = any(ch in part for ch in "*?[")
        matches = [n for n in names if (fnmatch.fnmatchcase(n, part) if glob else n == part)]
        if not matches:
            known = ", ".join(names) or "none"
            raise ConfigError(f"no profile in the result matches {part!r} (it has: {known})")
        keep.update(matches)
    if not keep:
        raise ConfigError(f"no profile named in {spec!r}")
    from launcher.probe.claims import judge_claims
    from launcher.probe.recommend import recommend

    profiles = tuple(p for p in run.profiles if p.name in keep)
    cores = run.machine.get("cores")
    try:
        claims = judge_claims(profiles, cores=cores) if isinstance(cores, int) and cores > 0 else []
        recommendation = recommend(profiles)
    except (KeyError, TypeError, ValueError) as exc:
        # The profile dicts are free-form in the file; judging needs their usual fields.
        raise ResultFileError(
            f"malformed launch probe result: cannot judge its profiles again ({type(exc).__name__}: {exc})"
        ) from None
    return dataclasses.replace(run, profiles=profiles, claims=tuple(claims), recommendation=recommendation)
