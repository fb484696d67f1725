"""Render a capacity run: terminal tables (rich) and one self-contained HTML page (inline SVG, no scripts)."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from launcher.capacity.model import CapacityRun, ProfileCapacity, StepResult, scaling_notes
from launcher.probe.model import Status

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def _s(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value * 1e3:.0f} ms" if value < 1 else f"{value:.2f} s"


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g}/s"


def _utilisation(step: StepResult) -> str:
    return " ".join(f"{pid}:{share:.0%}" for pid, share in step.utilisation.items()) or "—"


def _knee_text(p: ProfileCapacity) -> str:
    if p.knee is None:
        return "none" if p.status == Status.OK else p.status
    return f"≥ {p.knee:g}/s (max rate)" if p.capped else f"{p.knee:g}/s"


def summary_table(run: CapacityRun) -> Table:
    """One row per profile: its knee, per worker, and the step that holds it."""
    target = run.options.get("p99_target_s")
    table = Table(title=f"Capacity at p99 ≤ {target:g} s on {run.options.get('route')}", title_justify="left")
    for column in (
        "profile",
        "workers",
        "ready",
        "knee",
        "per worker",
        "p50 at knee",
        "p99 at knee",
        "steps",
        "status",
    ):
        table.add_column(column, no_wrap=True)
    for p in run.profiles:
        at = p.step_at(p.knee)
        table.add_row(
            p.name,
            str(p.workers),
            f"{p.ready_seconds:.1f} s" if p.ready_seconds else "—",
            _knee_text(p),
            _rate(p.knee_per_worker),
            _s(at.p50_s if at else None),
            _s(at.p99_s if at else None),
            str(len(p.steps)),
            p.status if p.error is None else f"{p.status}: {p.error}",
        )
    return table


def steps_table(p: ProfileCapacity, *, gpu: bool) -> Table:
    """Every step of one profile, in the order it was held."""
    table = Table(title=f"{p.name}: knee {_knee_text(p)}", title_justify="left")
    columns = [
        "rate",
        "sent",
        "achieved",
        "errors",
        "p50",
        "p90",
        "p99",
        "p99 from send",
        "send lag p99",
        "result",
        "busy per worker",
    ]
    if gpu:
        columns += ["GPU busy", "GPU MiB per worker"]
    for column in columns:
        table.add_column(column, no_wrap=column != "result")
    for step in p.steps:
        row = [
            _rate(step.rate),
            f"{step.sent}/{step.scheduled}",
            _rate(step.achieved_rate),
            f"{step.error_rate:.0%}" if step.errors else "0",
            _s(step.p50_s),
            _s(step.p90_s),
            _s(step.p99_s),
            _s(step.p99_from_sent_s),
            _s(step.send_lag_p99_s),
            ("[green]PASS[/]" if step.passed else "[red]MISS[/]") + f" {step.why}",
            _utilisation(step),
        ]
        if gpu:
            row += [
                "—" if step.gpu_busy is None else f"{step.gpu_busy:.0%}",
                " ".join(f"{pid}:{mib:.0f}" for pid, mib in step.gpu_memory_mib.items()) or "—",
            ]
        table.add_row(*row)
    return table


def render_run(run: CapacityRun, out: Console) -> None:
    """Print every table, the scaling check, the sizing answer and the GPU note."""
    for p in run.profiles:
        if p.steps:
            out.print(steps_table(p, gpu=run.gpu))
    out.print(summary_table(run))
    for note in scaling_notes(run.profiles, cores=int(run.machine.get("cores", 1))):
        out.print(note, highlight=False)
    if run.sizing is not None:
        out.print(f"Sizing: {run.sizing.text}", highlight=False)
    elif run.options.get("target_rate"):
        out.print("Sizing: no profile found a knee; nothing to size from.", highlight=False)
    if not run.gpu:
        out.print(str(run.machine.get("gpu_note", "no GPU")), highlight=False)
    else:
        memory = {p.name: p.gpu_memory_mib for p in run.profiles if p.gpu_memory_mib}
        out.print(f"GPU: {run.machine.get('gpu_note')}; memory per worker after load (MiB): {memory}", highlight=False)


# --- HTML ----------------------------------------------------------------------

_W, _H = 760, 420
_L, _R, _T, _B = 70, 20, 20, 50


def _ticks(lo: float, hi: float, log: bool) -> list[float]:
    if log:
        return [10.0**e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)]
    step = 10 ** math.floor(math.log10(max(hi - lo, 1e-9)))
    if (hi - lo) / step < 4:
        step /= 2
    return [i * step for i in range(math.ceil(lo / step), math.floor(hi / step) + 1)]


def chart_svg(profiles: Sequence[ProfileCapacity], target_s: float) -> str:
    """Rate against p50 (dashed) and p99 (solid), one colour per profile, latency on a log axis, target dotted."""
    points = [(s.rate, v) for p in profiles for s in p.steps for v in (s.p50_s, s.p99_s) if v]
    if not points:
        return "<p>No step was measured.</p>"
    x_hi = max(r for r, _ in points) * 1.05
    y_lo = min(*(v for _, v in points), target_s) / 1.5
    y_hi = max(*(v for _, v in points), target_s) * 1.5

    def x(rate: float) -> float:
        return _L + rate / x_hi * (_W - _L - _R)

    def y(value: float) -> float:
        span = math.log10(y_hi) - math.log10(y_lo)
        return _T + (1 - (math.log10(max(value, y_lo)) - math.log10(y_lo)) / span) * (_H - _T - _B)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" viewBox="0 0 {_W} {_H}" '
        'font-family="sans-serif" font-size="11">',
        f'<rect x="{_L}" y="{_T}" width="{_W - _L - _R}" height="{_H - _T - _B}" fill="none" stroke="#999"/>',
    ]
    for tick in _ticks(0, x_hi, log=False):
        parts.append(f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="{_T}" y2="{_H - _B}" stroke="#eee"/>')
        parts.append(f'<text x="{x(tick):.1f}" y="{_H - _B + 14}" text-anchor="middle">{tick:g}</text>')
    for tick in _ticks(y_lo, y_hi, log=True):
        if y_lo <= tick <= y_hi:
            parts.append(f'<line x1="{_L}" x2="{_W - _R}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#eee"/>')
            parts.append(f'<text x="{_L - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{_s(tick)}</text>')
    parts.append(
        f'<line x1="{_L}" x2="{_W - _R}" y1="{y(target_s):.1f}" y2="{y(target_s):.1f}" stroke="#000" '
        f'stroke-dasharray="2,3"><title>p99 target {target_s:g} s</title></line>'
    )
    parts.append(f'<text x="{_W - _R - 4}" y="{y(target_s) - 4:.1f}" text-anchor="end">target {_s(target_s)}</text>')
    parts.append(f'<text x="{(_L + _W - _R) / 2}" y="{_H - 12}" text-anchor="middle">arrival rate (requests/s)</text>')
    parts.append(
        f'<text x="14" y="{(_T + _H - _B) / 2}" transform="rotate(-90 14 {(_T + _H - _B) / 2})" '
        'text-anchor="middle">latency from scheduled send</text>'
    )
    for i, p in enumerate(profiles):
        colour = COLOURS[i % len(COLOURS)]
        steps = sorted(p.steps, key=lambda s: s.rate)
        for key, dash in (("p99_s", ""), ("p50_s", ' stroke-dasharray="5,4"')):
            pts = [(s, getattr(s, key)) for s in steps if getattr(s, key)]
            if not pts:
                continue
            path = " ".join(f"{x(s.rate):.1f},{y(v):.1f}" for s, v in pts)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
            for s, v in pts:
                fill = colour if s.passed else "#fff"
                label = f"{p.name} {s.rate:g}/s {key[:3]} {_s(v)} ({'PASS' if s.passed else 'MISS'})"
                parts.append(
                    f'<circle cx="{x(s.rate):.1f}" cy="{y(v):.1f}" r="3.5" fill="{fill}" stroke="{colour}">'
                    f"<title>{html.escape(label)}</title></circle>"
                )
        if p.knee is not None:
            parts.append(
                f'<line x1="{x(p.knee):.1f}" x2="{x(p.knee):.1f}" y1="{_T}" y2="{_H - _B}" stroke="{colour}" '
                f'stroke-opacity="0.5"><title>{html.escape(p.name)} knee {p.knee:g}/s</title></line>'
            )
        parts.append(
            f'<rect x="{_L + 10}" y="{_T + 8 + 16 * i}" width="12" height="3" fill="{colour}"/>'
            f'<text x="{_L + 28}" y="{_T + 13 + 16 * i}">{html.escape(p.name)}: knee {html.escape(_knee_text(p))}'
            "</text>"
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _html_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(run: CapacityRun) -> str:
    """The whole run as one HTML page: chart, summary, sizing, every step. No scripts, nothing fetched."""
    target = float(run.options.get("p99_target_s", 0) or 0)
    summary_rows = []
    for p in run.profiles:
        at = p.step_at(p.knee)
        summary_rows.append(
            [
                p.name,
                str(p.workers),
                _knee_text(p),
                _rate(p.knee_per_worker),
                _s(at.p50_s if at else None),
                _s(at.p99_s if at else None),
                p.status if p.error is None else f"{p.status}: {p.error}",
            ]
        )
    sections = [
        f"<h1>launch capacity: p99 ≤ {target:g} s on {html.escape(str(run.options.get('route')))}</h1>",
        f"<p>{html.escape(run.created)}; {run.machine.get('cores')} cores; "
        f"{html.escape(str(run.machine.get('gpu_note')))}; steps of {run.options.get('step_seconds')} s"
        + ("" if run.complete else "; <b>incomplete (interrupted)</b>")
        + "</p>",
        chart_svg(run.profiles, target),
        "<p>Solid: p99, dashed: p50, both from the scheduled send time; hollow points missed the target.</p>",
        _html_table(["profile", "workers", "knee", "per worker", "p50 at knee", "p99 at knee", "status"], summary_rows),
    ]
    notes = scaling_notes(run.profiles, cores=int(run.machine.get("cores", 1)))
    if run.sizing is not None:
        notes.append("Sizing: " + run.sizing.text)
    sections += [f"<p>{html.escape(n)}</p>" for n in notes]
    for p in run.profiles:
        headers = ["rate", "sent", "achieved", "errors", "p50", "p90", "p99", "p99 from send", "send lag p99"]
        headers += ["result", "busy per worker"] + (["GPU busy", "GPU MiB"] if run.gpu else [])
        rows = []
        for s in p.steps:
            row = [
                _rate(s.rate),
                f"{s.sent}/{s.scheduled}",
                _rate(s.achieved_rate),
                str(s.errors),
                _s(s.p50_s),
                _s(s.p90_s),
                _s(s.p99_s),
                _s(s.p99_from_sent_s),
                _s(s.send_lag_p99_s),
                ("PASS " if s.passed else "MISS ") + s.why,
                _utilisation(s),
            ]
            if run.gpu:
                row += [
                    "—" if s.gpu_busy is None else f"{s.gpu_busy:.0%}",
                    " ".join(f"{k}:{v:.0f}" for k, v in s.gpu_memory_mib.items()),
                ]
            rows.append(row)
        sections += [f"<h2>{html.escape(p.name)}</h2>", _html_table(headers, rows)]
    style = (
        "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:left}th{background:#f4f4f4}"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>launch capacity</title>'
        f"<style>{style}</style></head><body>\n" + "\n".join(sections) + "\n</body></html>\n"
    )
