"""Render a probe run for people: rich tables per profile, a matrix, claims, the recommendation."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from launcher.probe import metrics
from launcher.probe.appprobe import AppProbeRun
from launcher.probe.appprobe import describe as describe_route
from launcher.probe.model import (
    ClaimVerdict,
    Liveness,
    LoadCheck,
    LoadDecision,
    ProbeRun,
    ProfileResult,
    ScenarioResult,
    Status,
)
from launcher.probe.routes import CLASSES

_VERDICT_STYLE = {
    ClaimVerdict.CONFIRMED: "green",
    ClaimVerdict.REFUTED: "red",
    ClaimVerdict.DEPENDS: "yellow",
    ClaimVerdict.UNTESTED: "dim",
}
_LIVENESS_STYLE = {Liveness.FAST: "green", Liveness.DEGRADED: "yellow", Liveness.BLOCKED: "red"}


def _mark(passed: bool) -> Text:
    # An expectation holding says the model predicted well, not that the set-up is good:
    # never in the fit-to-serve colours.
    return Text("PASS", style="cyan") if passed else Text("FAIL", style="bold magenta")


def profile_table(result: ProfileResult) -> RenderableType:
    """Expectations of one profile with PASS/FAIL."""
    title = f"{result.name} — {result.profile.description}"
    if result.status != Status.OK:
        body = Text(f"{result.status.upper()}: {result.error or ''}\n{result.log_tail}", style="red")
        return Group(Text(title, style="bold"), body)
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("scenario", no_wrap=True)
    table.add_column("expectation")
    table.add_column("observed")
    table.add_column("", no_wrap=True)
    table.add_column("why")
    for verdict in result.verdicts:
        table.add_row(verdict.scenario, verdict.expectation, verdict.observed, _mark(verdict.passed), verdict.why)
    if result.assessment is not None:
        a = result.assessment
        verdict_line = "FIT to serve" if a.fit else "UNFIT to serve: " + "; ".join(a.unfit)
        table.caption = f"{verdict_line}. Liveness {a.liveness}: {a.liveness_evidence}"
        table.caption_justify = "left"
    extra = f"ready in {result.ready_seconds:.2f}s" if result.ready_seconds else ""
    if result.stop_seconds is not None:
        extra += f", stopped in {result.stop_seconds:.2f}s" + (" (forced)" if result.stop_forced else "")
    return Group(table, Text(extra, style="dim"))


def scenario_names(results: Sequence[ProfileResult]) -> list[str]:
    """Scenario names in the order they first appear."""
    names: list[str] = []
    for result in results:
        for s in result.scenarios:
            if s.scenario not in names:
                names.append(s.scenario)
    return names


def scenario_cell(runs: Sequence[ScenarioResult]) -> Text:
    """One profile x scenario cell over its repeats: median makespan (spread) / max overlap / health p99 / errors."""
    figures = [metrics.summary(s.records) for s in runs]
    makespans = [f.makespan_s for f in figures]
    median = statistics.median(makespans)
    spread = max(makespans) - min(makespans)
    overlap = max(f.overlap for f in figures)
    p99 = max((f.health_p99_ms for f in figures if f.health_p99_ms is not None), default=None)
    errors = sum(f.error_count for f in figures)
    ok = all(v.passed for s in runs for v in s.verdicts)
    shown = f"{median:.2f}" + (f"±{spread / 2:.2f}" if len(runs) > 1 else "")
    health = "-" if p99 is None else f"{p99:.0f}"
    return Text(f"{shown}/{overlap}/{health}/{errors}", style="" if ok else "red")


def predicted_mark(result: ProfileResult) -> Text:
    """The *as predicted* verdict: the tool's own correctness, never in the fit colours."""
    if result.status != Status.OK:
        return Text(result.status, style="red")
    return Text("as predicted", style="cyan") if result.passed else Text("NOT as predicted", style="bold magenta")


def fit_mark(result: ProfileResult) -> Text:
    """The *fit to serve* verdict: green only when fit."""
    return Text("FIT", style="bold green") if result.fit else Text("UNFIT", style="bold red")


def matrix_table(results: Sequence[ProfileResult]) -> Table:
    """Profile x scenario figures, then both verdicts and the liveness class."""
    scenarios = scenario_names(results)
    table = Table(
        title="summary: makespan s (median±half-spread) / max overlap / health p99 ms / errors",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("profile", no_wrap=True)
    table.add_column("ready s", justify="right")
    for name in scenarios:
        table.add_column(name, justify="right", no_wrap=True)
    for column in ("predicted", "fit", "liveness"):
        table.add_column(column, no_wrap=True)
    for result in results:
        cells: list[RenderableType] = [result.name, f"{result.ready_seconds:.1f}" if result.ready_seconds else "-"]
        for name in scenarios:
            runs = [s for s in result.scenarios if s.scenario == name]
            cells.append(scenario_cell(runs) if runs else Text("-"))
        live = result.assessment.liveness if result.assessment else None
        # Which scenario decided the class (its worst), e.g. "degraded (cpu)".
        scenario = result.assessment.liveness_scenario if result.assessment else ""
        decided = f" ({scenario})" if scenario else ""
        shown_live = Text(f"{live}{decided}" if live else "-", style=_LIVENESS_STYLE.get(live, "") if live else "")
        cells += [predicted_mark(result), fit_mark(result), shown_live]
        table.add_row(*cells)
    return table


def claims_table(run: ProbeRun, *, details: bool = False) -> Table:
    """The write-up's claims with CONFIRMED/REFUTED/DEPENDS: a one-line summary, or the whole claim and evidence."""
    table = Table(title="the write-up's claims", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("#", justify="right")
    if details:
        table.add_column("claim")
    table.add_column("verdict", no_wrap=True)
    table.add_column("evidence")
    for claim in run.claims:
        verdict = Text(claim.verdict, style=_VERDICT_STYLE.get(claim.verdict, ""))
        if details:
            table.add_row(str(claim.number), claim.text, verdict, claim.evidence)
        else:
            table.add_row(str(claim.number), verdict, claim.summary or claim.evidence)
    return table


def conformance_table(run: ProbeRun, *, details: bool = False) -> Table:
    """Each backend's server conformance check: one line per backend, every check's counts with ``details``."""
    table = Table(
        title="server conformance (launch's own ASGI app under each backend, as a profile serves it)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("backend", no_wrap=True)
    table.add_column("server", no_wrap=True)
    table.add_column("s", justify="right")
    table.add_column("checks", no_wrap=True)
    table.add_column("Gradio's event stream")
    for check in run.conformance:
        server = f"{check.server} {check.version or '?'}"
        backend = check.backend + (" + relay" if check.relay else "")
        if check.error:
            table.add_row(backend, server, f"{check.seconds:.1f}", Text("-", style="dim"), check.error)
            continue
        marks = Text()
        for outcome in check.outcomes:
            marks.append("✓" if outcome.passed else "✗", style="green" if outcome.passed else "bold red")
        defect = check.event_stream_defect
        verdict = Text("works", style="green") if defect is None else Text(f"broken: {defect.mechanism}", style="red")
        table.add_row(backend, server, f"{check.seconds:.1f}", marks, verdict)
        if details:
            for outcome in check.outcomes:
                mark = "pass" if outcome.passed else "FAIL"
                table.add_row("", "", "", f"  {mark} {outcome.check}", Text(outcome.observed, style="dim"))
    table.caption = (
        "checks: no false disconnect, stream whole, disconnect seen, cancellation propagates; "
        "+ relay: behind the opt-in disconnect relay (disconnect_relay = true)"
    )
    table.caption_justify = "left"
    return table


def reason_group(reason: str) -> str:
    """The kind of a rejection, for grouping: the text before its first colon or parenthesis.

    A server defect is grouped whole: it names the mechanism and the server's version, which differ per server.
    """
    if reason.startswith("server defect:"):
        return reason
    head = reason.split(":", 1)[0].split(" (", 1)[0].strip()
    return head or reason


def recommendation_text(run: ProbeRun, *, details: bool = False) -> Text:
    """The recommendation (or why there is none), the rule, and the other profiles grouped by why they lost."""
    rec = run.recommendation
    text = Text()
    if rec is None:
        text.append("No profile is fit to serve in this run; nothing is recommended.\n", style="bold yellow")
        rejected = {
            r.name: (r.assessment.unfit[0] if r.assessment and r.assessment.unfit else r.status) for r in run.profiles
        }
    else:
        text.append("Recommended: ", style="bold")
        text.append(rec.profile.name, style="bold green")
        if rec.tied:
            text.append(f" (tie: {', '.join(rec.tied)})", style="yellow")
        text.append(f" — {rec.why}.\n")
        if rec.rule:
            text.append(f"Rule: {rec.rule}.\n", style="dim")
        rejected = rec.rejected
    if details:
        for name, reason in rejected.items():
            text.append(f"  {name}: {reason}\n", style="dim")
        return text
    groups: dict[str, list[str]] = {}
    for name, reason in rejected.items():
        groups.setdefault(reason_group(reason), []).append(name)
    for group, names in groups.items():
        text.append(f"  {group}: ", style="bold")
        text.append(", ".join(names) + "\n", style="dim")
    return text


def load_check_line(check: LoadCheck, rate: float) -> str:
    """One fit profile held at the target rate, in words: "carries 4.5/s: p99 0.80 s, ... (knee 7.1/s)" or why not."""
    if check.error is not None:
        return f"{check.profile}: not checked: {check.error}"
    verdict = f"{'carries' if check.carried else 'does not carry'} {rate:g}/s: {check.why}"
    if check.knee is None:
        knee = "no rate tried met the target"
    else:
        knee = f"knee {'at least ' if check.knee_capped else ''}{check.knee:g}/s"
    return f"{check.profile}: {verdict} ({knee})"


def load_text(decision: LoadDecision) -> Text:
    """The load check: each fit profile's hold at the target rate, then the recommendation against it."""
    text = Text()
    text.append(
        f"Target: {decision.rate:g}/s of {decision.route} at p99 <= {decision.p99_s:g} s, "
        f"held by {len(decision.checks)} fit profile(s)\n",
        style="bold",
    )
    for check in decision.checks:
        text.append(f"  {load_check_line(check, decision.rate)}\n", style="green" if check.carried else "yellow")
    if decision.chosen is not None:
        text.append(f"Recommended for {decision.rate:g}/s: ", style="bold")
        text.append(decision.chosen, style="bold green")
        text.append(f" — {decision.why}.\n")
    else:
        text.append("No fit profile carries the target: ", style="bold yellow")
        text.append(f"{decision.why}.\n")
    text.append(f"Rule: {decision.rule}.\n", style="dim")
    return text


def render_run(run: ProbeRun, console: Console, *, claims: bool = True, details: bool = False) -> None:
    """Print the report: the matrix, the claims and the recommendation; with ``details`` every expectation too."""
    if details:
        for result in run.profiles:
            console.print(profile_table(result))
    if run.conformance:
        console.print(conformance_table(run, details=details))
    console.print(matrix_table(run.profiles))
    if claims and run.claims:
        console.print(claims_table(run, details=details))
    console.print(recommendation_text(run, details=details))
    if run.load is not None:
        console.print(load_text(run.load))
    if not run.complete:
        console.print(Text("INCOMPLETE: the run was interrupted; results so far are shown.", style="bold yellow"))


def app_table(run: AppProbeRun) -> Table:
    """A user app's probe: one row per route, one column per profile, the advice of the worst class seen."""
    table = Table(title=f"{run.app}: per-route verdicts")
    table.add_column("route", no_wrap=True)
    table.add_column("request")
    for result in run.profiles:
        table.add_column(result.profile + (f" (= {', '.join(result.same_as)})" if result.same_as else ""))
    table.add_column("advice")
    for index, route in enumerate(run.profiles[0].routes if run.profiles else ()):
        cells = [describe_route(result.routes[index]) for result in run.profiles]
        worst = min((r.routes[index] for r in run.profiles), key=lambda r: CLASSES.index(r.route_class))
        table.add_row(route.route, route.request, *cells, worst.advice)
    return table


def render_app_run(run: AppProbeRun, console: Console) -> None:
    """Print a user app's probe: the per-route table, why each other profile lost, the recommendation, the load."""
    console.print(app_table(run))
    recommendation = run.recommendation
    for name, why in recommendation.rejected.items():
        console.print(f"not recommended: {name}: {why}", highlight=False)
    if recommendation.profile is None:
        console.print("recommendation: none (no profile qualifies)", highlight=False)
    else:
        tied = f" (tied with {', '.join(recommendation.tied_with)})" if recommendation.tied_with else ""
        console.print(f"recommendation: {recommendation.profile}{tied}: {recommendation.reason}", highlight=False)
    if run.load is not None:
        console.print(load_text(run.load))
