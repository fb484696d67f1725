"""A probe run as one self-contained HTML page: tables, the recommendation and a timeline per burst.

:func:`render_html` is a pure function of a :class:`~launcher.probe.model.ProbeRun`.
The page has no scripts and loads nothing: its CSS and SVG are inline, it uses
the system's fonts, and it reads the same offline as online. Every string that
comes from the data is escaped (:func:`esc`), and the markup is also
well-formed XML, so tools (and the tests) can parse it.

The timelines are laid out by small pure helpers -- :class:`Scale` (ns to x
pixels), :func:`nice_step` and :meth:`Scale.ticks` (the axis), :func:`pack_rows`
(bars that overlap in one lane go to separate rows) and :func:`layout` (lanes
and marks of one burst) -- so the geometry can be checked against the data.

In a timeline each work request (and each failed health check) is one
``<g class="req">`` carrying ``data-record`` (its position in
``ScenarioResult.records``), ``data-index``, ``data-kind``, ``data-work``,
``data-pid``, ``data-thread`` and ``data-failed``; inside it a ``<title>`` with
its numbers and one of: a ``rect.bar`` from work start to end (``rect.pipe``
inside it for a generation's pipeline call), a ``rect.client`` from send to
receive (answered, but without attribution) or a ``path.cross`` at the
client's receive time (failed, without attribution) with a ``line.wait`` back
to when it was sent. A failed request the server did attribute (an error
status) is a bar with a ``path.cross`` in its middle.

Answered health checks are the bulk of a long run (a poll every few tens of
ms), so they are drawn as ``path`` elements of one subpath per check, each
listing its checks in ``data-records`` (see :func:`health_svg`): one for the
quick ones, one per set of slow ones answered together. The page is meant to
be mailed: a 30-profile run is under 2 MB.

The summary matrix leads with the verdicts (:data:`VERDICT_COLUMNS`). *Fit to
serve* and *as predicted* never share a colour: fit is green ● FIT / red ■
UNFIT, predicted (and every expectation) blue ✓ / amber ✗, and the scenario
cells, which show what was measured, stay white whatever the verdicts.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from launcher.probe import metrics
from launcher.probe.appprobe import AppProbeRun, RouteResult
from launcher.probe.appprobe import describe as describe_route
from launcher.probe.model import (
    Kind,
    LoadDecision,
    ProbeRun,
    ProfileResult,
    RequestRecord,
    ScenarioResult,
    Status,
    Verdict,
)
from launcher.probe.report import load_check_line
from launcher.probe.routes import CLASSES, FAILS

# Geometry of a timeline, in SVG pixels.
LABEL_WIDTH = 190
PLOT_WIDTH = 940
RIGHT_PAD = 24
TOP_PAD = 8
ROW_HEIGHT = 14
ROW_GAP = 3
HEALTH_ROW_HEIGHT = 6
HEALTH_ROW_GAP = 1
"""Health checks that wait (a blocked event loop) overlap and stack: their rows are thin."""
LANE_PAD = 5
AXIS_HEIGHT = 40
TICK_MIN_WIDTH = 1.5
"""Health checks answered in microseconds still show as a tick this wide."""
CROSS_SIZE = 5
HEALTH_TOGETHER_NS = 5_000_000
"""Slow health checks answered within this of each other share one mark and tooltip (a queue answered at once)."""
HEALTH_QUIET_S = 0.050
"""Health checks answered within this are drawn together, as one path per lane with one tooltip; slower ones
(a starved or blocked event loop: what a reader hovers for) get tooltips of their own. A long run
polls /health thousands of times, and one element per check was most of the page's size."""
SVG_WIDTH = LABEL_WIDTH + PLOT_WIDTH + RIGHT_PAD

COLOURS: dict[str, str] = {
    "api": "#1f77b4",
    "demo": "#9467bd",
    "generate": "#ff7f0e",
    "health": "#2ca02c",
    "failed": "#d62728",
    "pipeline": "#a34a00",
    "client": "#7f7f7f",
}
"""Fill colours by what a mark shows (``colour_key``)."""

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def esc(value: object) -> str:
    """Text from the data, safe in element content and in quoted attributes (control characters dropped)."""
    return html.escape(_CONTROL.sub("", str(value)), quote=True)


def colour_key(record: RequestRecord) -> str:
    """Which colour a request gets: ``generate`` for generations, else its kind."""
    return "generate" if record.work == "generate" else record.kind


def _px(value: float) -> str:
    """A coordinate with at most two decimals and no trailing zeros (``12.5``, ``37``): the page's bulk is numbers."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


# --- geometry ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scale:
    """Maps monotonic-clock nanoseconds in ``[lo_ns, hi_ns]`` linearly onto ``[x0, x1]`` pixels."""

    lo_ns: int
    hi_ns: int
    x0: float = LABEL_WIDTH
    x1: float = LABEL_WIDTH + PLOT_WIDTH

    def __post_init__(self) -> None:
        if self.hi_ns <= self.lo_ns:
            raise ValueError(f"empty time range: {self.lo_ns}..{self.hi_ns}")

    def __call__(self, t_ns: int) -> float:
        """The x of ``t_ns``."""
        return self.x0 + (t_ns - self.lo_ns) * (self.x1 - self.x0) / (self.hi_ns - self.lo_ns)

    def ticks(self, origin_ns: int, *, target: int = 8) -> list[tuple[float, str]]:
        """Axis ticks inside the range: (x, label in seconds from ``origin_ns``) at a round step."""
        lo_s = (self.lo_ns - origin_ns) / 1e9
        hi_s = (self.hi_ns - origin_ns) / 1e9
        step = nice_step(hi_s - lo_s, target)
        decimals = max(0, -math.floor(math.log10(step) + 1e-9))
        first = math.ceil(lo_s / step - 1e-9)
        last = math.floor(hi_s / step + 1e-9)
        ticks = []
        for k in range(first, last + 1):
            seconds = k * step
            label = f"{seconds:.{decimals}f} s"
            if label.startswith("-0") and float(label[:-2]) == 0:
                label = label[1:]
            ticks.append((self(origin_ns + round(seconds * 1e9)), label))
        return ticks


def nice_step(span_s: float, target: int = 8) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving at most about ``target`` ticks over ``span_s``."""
    if span_s <= 0 or not math.isfinite(span_s):
        return 1.0
    raw = span_s / max(1, target)
    power = 10.0 ** math.floor(math.log10(raw))
    for multiple in (1, 2, 5, 10):
        if multiple * power >= raw * (1 - 1e-9):
            return multiple * power
    return 10 * power  # pragma: no cover - the loop always returns


def pack_rows(intervals: Sequence[tuple[int, int]]) -> list[int]:
    """A row for each interval so that intervals in one row never overlap (greedy, by start)."""
    order = sorted(range(len(intervals)), key=lambda i: (intervals[i][0], intervals[i][1]))
    row_ends: list[int] = []
    rows = [0] * len(intervals)
    for i in order:
        start, end = intervals[i]
        for row, row_end in enumerate(row_ends):
            if row_end <= start:
                rows[i] = row
                row_ends[row] = max(end, start)
                break
        else:
            rows[i] = len(row_ends)
            row_ends.append(max(end, start))
    return rows


@dataclass
class Mark:
    """One request drawn in a lane."""

    position: int
    """Index into ``ScenarioResult.records``."""
    record: RequestRecord
    shape: str
    """``bar``, ``tick``, ``client`` or ``cross``."""
    start_ns: int
    """Where the mark starts: work start (bar), sent (tick, client, cross)."""
    end_ns: int
    """Where it ends: work end (bar), answered (tick), received (client, cross: where the cross is)."""
    row: int = 0


@dataclass
class Lane:
    """One horizontal band of a timeline."""

    kind: str
    """``worker`` (a pid, or one thread of it), ``client`` (answered, unattributed), ``errors`` or ``health``."""
    label: str
    title: str
    pid: int | None = None
    thread: int | None = None
    rows: int = 1
    y: float = 0.0
    shade: int = 0
    marks: list[Mark] = field(default_factory=list)

    @property
    def height(self) -> float:
        """The lane's height in pixels."""
        return 2 * LANE_PAD + self.rows * self.row_height + (self.rows - 1) * self.row_gap

    def row_y(self, row: int) -> float:
        """Top of row ``row``."""
        return self.y + LANE_PAD + row * (self.row_height + self.row_gap)

    @property
    def row_height(self) -> int:
        """Height of one row of marks."""
        return HEALTH_ROW_HEIGHT if self.kind == "health" else ROW_HEIGHT

    @property
    def row_gap(self) -> int:
        """Space between rows."""
        return HEALTH_ROW_GAP if self.kind == "health" else ROW_GAP


@dataclass
class Timeline:
    """The layout of one burst: its scale, its lanes (top to bottom) and the axis origin."""

    scale: Scale
    origin_ns: int
    lanes: list[Lane]

    @property
    def plot_height(self) -> float:
        """Height of the lanes together."""
        return sum(lane.height for lane in self.lanes)

    @property
    def height(self) -> float:
        """Height of the whole SVG."""
        return TOP_PAD + self.plot_height + AXIS_HEIGHT


def health_answered_ns(record: RequestRecord) -> int:
    """When a health check was answered: the server's handler time if known, else the client's receive time."""
    return record.end_ns if record.end_ns is not None else record.received_ns


def time_range(scenario: ScenarioResult) -> tuple[int, int]:
    """The burst's time range: from its start (or anything earlier) to its end (or anything later)."""
    points = [scenario.started_ns, scenario.finished_ns]
    for r in scenario.records:
        points += [r.sent_ns, r.received_ns]
        points += [t for t in (r.start_ns, r.end_ns) if t is not None]
    lo, hi = min(points), max(points)
    return lo, hi if hi > lo else lo + 1_000_000_000


def layout(scenario: ScenarioResult, *, x0: float = LABEL_WIDTH, x1: float = LABEL_WIDTH + PLOT_WIDTH) -> Timeline:
    """Lanes and marks of one burst.

    One lane per worker pid, split into one sub-lane per thread when the pid
    ran work on several threads (sync handlers); then, when there are any, a
    lane of answered requests without attribution, an ``errors`` lane of failed
    requests without attribution and a ``health`` lane. Bars that overlap in a
    lane are stacked in rows.
    """
    lo, hi = time_range(scenario)
    scale = Scale(lo, hi, x0, x1)
    worker_marks: dict[int, list[Mark]] = {}
    client: list[Mark] = []
    errors: list[Mark] = []
    health: list[Mark] = []
    for position, r in enumerate(scenario.records):
        if r.kind == Kind.HEALTH and r.ok:
            health.append(Mark(position, r, "tick", r.sent_ns, max(r.sent_ns, health_answered_ns(r))))
        elif r.kind != Kind.HEALTH and r.has_work_interval:
            assert r.pid is not None and r.start_ns is not None and r.end_ns is not None
            end = max(r.start_ns, r.end_ns)  # never a negative width, whatever a file says
            worker_marks.setdefault(r.pid, []).append(Mark(position, r, "bar", r.start_ns, end))
        elif r.ok:
            client.append(Mark(position, r, "client", r.sent_ns, r.received_ns))
        else:
            errors.append(Mark(position, r, "cross", min(r.sent_ns, r.received_ns), r.received_ns))
    lanes: list[Lane] = []
    pids = sorted(worker_marks, key=lambda pid: (min(m.start_ns for m in worker_marks[pid]), pid))
    for shade, pid in enumerate(pids):
        marks = worker_marks[pid]
        threads: dict[int | None, list[Mark]] = {}
        for mark in sorted(marks, key=lambda m: (m.start_ns, m.position)):
            threads.setdefault(mark.record.thread, []).append(mark)
        if len(threads) <= 1:
            thread = next(iter(threads))
            title = f"worker pid {pid}" + (f", thread {thread}" if thread is not None else "")
            lanes.append(Lane("worker", f"pid {pid}", title, pid=pid, thread=thread, shade=shade, marks=marks))
            continue
        for ordinal, (thread, thread_marks) in enumerate(threads.items(), start=1):
            label = f"pid {pid} · thread {ordinal}" if ordinal == 1 else f"thread {ordinal}"
            title = f"worker pid {pid}, thread {thread}"
            lanes.append(Lane("worker", label, title, pid=pid, thread=thread, shade=shade, marks=thread_marks))
    if client:
        title = "answered requests the server did not attribute (client-side send to receive)"
        lanes.append(Lane("client", "unattributed", title, shade=len(pids), marks=client))
    if errors:
        title = "failed requests (no server attribution), at the client's receive time"
        lanes.append(Lane("errors", "errors", title, shade=len(pids) + 1, marks=errors))
    if health:
        quick = sum(metrics.health_latency(m.record) <= HEALTH_QUIET_S for m in health)
        title = (
            f"/health checks, from send to answer: {len(health)}, {quick} of them answered within "
            f"{HEALTH_QUIET_S * 1000:.0f} ms (drawn together); hover a slower one for its numbers"
        )
        lanes.append(Lane("health", "/health", title, shade=len(pids) + 2, marks=health))
    y = float(TOP_PAD)
    for lane in lanes:
        rows = pack_rows([(m.start_ns, m.end_ns) for m in lane.marks])
        for mark, row in zip(lane.marks, rows, strict=True):
            mark.row = row
        lane.rows = max(rows, default=0) + 1
        lane.y = y
        y += lane.height
    return Timeline(scale=scale, origin_ns=scenario.started_ns, lanes=lanes)


# --- text -------------------------------------------------------------------------------------------


def _s(t_ns: int | None, origin_ns: int) -> str:
    return "?" if t_ns is None else f"{(t_ns - origin_ns) / 1e9:.3f} s"


def request_title(record: RequestRecord, origin_ns: int) -> str:
    """The tooltip of one request: what it was, where and when it ran, what came back."""
    what = record.kind if record.work is None else f"{record.kind} {record.work}"
    lines = [f"{what} #{record.index}" + ("" if record.ok else " — FAILED")]
    if record.pid is not None:
        lines.append(f"pid {record.pid}" + (f", thread {record.thread}" if record.thread is not None else ""))
    if record.start_ns is not None and record.end_ns is not None:
        lines.append(
            f"work {_s(record.start_ns, origin_ns)} → {_s(record.end_ns, origin_ns)} "
            f"({(record.end_ns - record.start_ns) / 1e9:.3f} s)"
        )
    if record.pipeline_start_ns is not None and record.pipeline_end_ns is not None:
        lines.append(
            f"pipeline {_s(record.pipeline_start_ns, origin_ns)} → {_s(record.pipeline_end_ns, origin_ns)} "
            f"({(record.pipeline_end_ns - record.pipeline_start_ns) / 1e9:.3f} s)"
        )
    if record.kind == Kind.HEALTH and record.ok:
        lines.append(f"answered after {metrics.health_latency(record) * 1000:.1f} ms")
    lines.append(
        f"client: sent {_s(record.sent_ns, origin_ns)}, received {_s(record.received_ns, origin_ns)}, "
        f"latency {record.latency_s:.3f} s"
    )
    if record.in_flight is not None:
        lines.append(f"in flight in its process at start: {record.in_flight}")
    if record.status is not None:
        lines.append(f"status {record.status}")
    if record.error is not None:
        lines.append(f"error {record.error}" + (f": {record.detail}" if record.detail else ""))
    return "\n".join(lines)


def _fmt_s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


# --- SVG --------------------------------------------------------------------------------------------


def cross_path(cx: float, cy: float, size: float = CROSS_SIZE) -> str:
    """A red cross centred on (cx, cy), its centre also in ``data-x``/``data-y``."""
    a, b, c, d = _px(cx - size), _px(cx + size), _px(cy - size), _px(cy + size)
    return f'<path class="cross" data-x="{_px(cx)}" data-y="{_px(cy)}" d="M{a} {c} L{b} {d} M{a} {d} L{b} {c}"/>'


def _mark_svg(mark: Mark, lane: Lane, timeline: Timeline) -> str:
    r = mark.record
    scale = timeline.scale
    failed = not r.ok
    attrs = (
        f'class="req{" failed" if failed else ""}" data-record="{mark.position}" data-index="{r.index}" '
        f'data-kind="{esc(r.kind)}" data-work="{esc(r.work or "")}" data-pid="{"" if r.pid is None else r.pid}" '
        f'data-thread="{"" if r.thread is None else r.thread}" data-failed="{str(failed).lower()}" '
        f'data-shape="{mark.shape}"'
    )
    parts = [f"<g {attrs}><title>{esc(request_title(r, timeline.origin_ns))}</title>"]
    top = lane.row_y(mark.row)
    x = scale(mark.start_ns)
    if mark.shape == "cross":
        # From when it was sent (a dashed line) to when the client gave up or got the error (the cross).
        cy = top + lane.row_height / 2
        sent, x = x, scale(mark.end_ns)
        if sent < x:
            parts.append(f'<line class="wait" x1="{_px(sent)}" y1="{_px(cy)}" x2="{_px(x)}" y2="{_px(cy)}"/>')
        parts.append(cross_path(x, cy))
    else:
        width = scale(mark.end_ns) - x
        if mark.shape == "tick":
            width = max(width, TICK_MIN_WIDTH)
        cls = {"bar": f"bar k-{colour_key(r)}", "tick": "tick k-health", "client": "client"}[mark.shape]
        parts.append(
            f'<rect class="{cls}" x="{_px(x)}" y="{_px(top)}" width="{_px(width)}" height="{lane.row_height}"/>'
        )
        if mark.shape == "bar" and r.pipeline_start_ns is not None and r.pipeline_end_ns is not None:
            px = scale(r.pipeline_start_ns)
            parts.append(
                f'<rect class="pipe" x="{_px(px)}" y="{_px(top + 3)}" '
                f'width="{_px(scale(r.pipeline_end_ns) - px)}" height="{ROW_HEIGHT - 6}"/>'
            )
        if failed:
            # Failed but attributed (an error status, say): the bar, outlined, with a cross in its middle.
            parts.append(cross_path(x + width / 2, top + lane.row_height / 2))
    parts.append("</g>")
    return "".join(parts)


def ticks_d(marks: Sequence[Mark], lane: Lane, scale: Scale) -> str:
    """Path data of health ticks: a box from send to answer each, ``M x y h width v height h -width z``.

    After the first box each starts with a relative ``m dx dy`` from the one before (a closed
    subpath leaves the pen at its start), taken in hundredths of a pixel so that nothing drifts.
    """
    out = []
    last: tuple[int, int] | None = None
    for mark in marks:
        x = scale(mark.start_ns)
        width = _px(max(scale(mark.end_ns) - x, TICK_MIN_WIDTH))
        at = (round(x * 100), round(lane.row_y(mark.row) * 100))
        if last is None:
            move = f"M{_px(at[0] / 100)} {_px(at[1] / 100)}"
        else:
            move = f"m{_px((at[0] - last[0]) / 100)} {_px((at[1] - last[1]) / 100)}"
        out.append(f"{move}h{width}v{lane.row_height}h-{width}z")
        last = at
    return "".join(out)


def ranges(positions: Iterable[int]) -> str:
    """Ascending integers as runs: ``3-5 7 9-10``."""
    runs: list[list[int]] = []
    for n in positions:
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return " ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def _answered_together(marks: Sequence[Mark]) -> list[list[Mark]]:
    """Checks answered within :data:`HEALTH_TOGETHER_NS` of the one before: a blocked loop answers its queue at once."""
    groups: list[list[Mark]] = []
    last = 0
    for mark in sorted(marks, key=lambda m: (health_answered_ns(m.record), m.position)):
        answered = health_answered_ns(mark.record)
        if groups and answered - last <= HEALTH_TOGETHER_NS:
            groups[-1].append(mark)
        else:
            groups.append([mark])
        last = answered
    return [sorted(group, key=lambda m: m.position) for group in groups]


def _slow_title(group: Sequence[Mark], origin_ns: int) -> str:
    pids = sorted({m.record.pid for m in group if m.record.pid is not None})
    where = f" · pid {', '.join(map(str, pids))}" if pids else ""
    waits = sorted(metrics.health_latency(m.record) * 1000 for m in group)
    if len(group) == 1:
        return f"/health #{group[0].record.index}{where} · answered after {waits[0]:.0f} ms"
    answered = max(health_answered_ns(m.record) for m in group)
    indices = sorted(m.record.index for m in group)
    which = ", ".join(f"#{i}" for i in indices) if len(indices) <= 6 else f"#{indices[0]} to #{indices[-1]}"
    return (
        f"{len(group)} /health checks ({which}){where} answered together "
        f"at {_s(answered, origin_ns)}, after {waits[0]:.0f} to {waits[-1]:.0f} ms"
    )


def health_svg(lane: Lane, timeline: Timeline) -> str:
    """The health lane's ticks, each a subpath from send to answer.

    Each ``path`` lists its records' positions in ``data-records`` (as :func:`ranges`), in the
    order of its subpaths (:func:`ticks_d`). Quick answers (within :data:`HEALTH_QUIET_S`) are one ``path.ticks``;
    slower ones, inside ``g.slow-ticks``, are one path per set of checks answered together, with
    a tooltip of their numbers.
    """
    quiet = [m for m in lane.marks if metrics.health_latency(m.record) <= HEALTH_QUIET_S]
    slow = [m for m in lane.marks if metrics.health_latency(m.record) > HEALTH_QUIET_S]
    scale = timeline.scale
    out = []
    if quiet:
        quiet.sort(key=lambda m: m.position)
        out.append(
            f'<path class="ticks k-health" data-records="{ranges(m.position for m in quiet)}" '
            f'd="{ticks_d(quiet, lane, scale)}">'
            f"<title>{len(quiet)} /health checks answered within {HEALTH_QUIET_S * 1000:.0f} ms</title></path>"
        )
    if slow:
        out.append('<g class="slow-ticks k-health">')
        for group in _answered_together(slow):
            out.append(
                f'<path data-records="{ranges(m.position for m in group)}" '
                f'd="{ticks_d(group, lane, scale)}">'
                f"<title>{esc(_slow_title(group, timeline.origin_ns))}</title></path>"
            )
        out.append("</g>")
    return "".join(out)


def timeline_svg(scenario: ScenarioResult, *, label: str = "") -> str:
    """The timeline of one burst as an inline ``<svg>`` element.

    Drawn in layers: lane backgrounds, the grid, then each lane's label and
    marks (so the grid never cuts a bar), then the axis.
    """
    timeline = layout(scenario)
    scale = timeline.scale
    plot_top = float(TOP_PAD)
    plot_bottom = plot_top + (timeline.plot_height if timeline.lanes else 24)
    height = plot_bottom + AXIS_HEIGHT
    out = [
        f'<svg class="timeline" width="{SVG_WIDTH}" height="{_px(height)}" '
        f'viewBox="0 0 {SVG_WIDTH} {_px(height)}" role="img" aria-label="{esc(label or scenario.scenario)}" '
        f'data-x0="{_px(scale.x0)}" data-x1="{_px(scale.x1)}" data-lo-ns="{scale.lo_ns}" '
        f'data-hi-ns="{scale.hi_ns}" data-origin-ns="{timeline.origin_ns}">',
        '<g class="backgrounds">',
    ]
    out.extend(  # every other lane shaded; the others are the page's white
        f'<rect class="lane-bg shade-1" x="0" y="{_px(lane.y)}" width="{SVG_WIDTH}" height="{_px(lane.height)}"/>'
        for lane in timeline.lanes
        if lane.shade % 2
    )
    out.append('</g><g class="grid">')
    ticks = scale.ticks(timeline.origin_ns)
    grid = "".join(f"M{_px(x)} {_px(plot_top)}V{_px(plot_bottom + 4)}" for x, _ in ticks)
    if grid:
        out.append(f'<path d="{grid}"/>')
    out.append("</g>")
    for lane in timeline.lanes:
        attrs = (
            f'class="lane lane-{lane.kind}" data-lane="{lane.kind}"'
            + ("" if lane.pid is None else f' data-pid="{lane.pid}"')
            + ("" if lane.thread is None else f' data-thread="{lane.thread}"')
            + f' data-y0="{_px(lane.y)}" data-y1="{_px(lane.y + lane.height)}"'
        )
        out.append(f"<g {attrs}>")
        out.append(
            f'<text class="lane-label" x="8" y="{_px(lane.y + lane.height / 2 + 4)}">'
            f"<title>{esc(lane.title)}</title>{esc(lane.label)}</text>"
        )
        if lane.kind == "health":
            out.append(health_svg(lane, timeline))
        else:
            out.extend(_mark_svg(mark, lane, timeline) for mark in lane.marks)
        out.append("</g>")
    if not timeline.lanes:
        out.append(f'<text class="empty" x="{_px(scale.x0 + 8)}" y="{_px(plot_top + 16)}">no requests recorded</text>')
    out.append('<g class="axis">')
    out.append(
        f'<line class="axis-line" x1="{_px(scale.x0)}" y1="{_px(plot_bottom)}" '
        f'x2="{_px(scale.x1)}" y2="{_px(plot_bottom)}"/>'
    )
    out.extend(
        f'<text class="tick-label" x="{_px(x)}" y="{_px(plot_bottom + 16)}">{esc(text)}</text>' for x, text in ticks
    )
    out.append(
        f'<text class="axis-title" x="{_px((scale.x0 + scale.x1) / 2)}" y="{_px(plot_bottom + 33)}">'
        "seconds from the burst's start</text>"
    )
    out.append("</g></svg>")
    return "".join(out)


def legend_svg() -> str:
    """What the colours and shapes mean."""
    items = [
        ("api", "API request"),
        ("demo", "demo click"),
        ("generate", "generation (darker: pipeline call)"),
        ("health", "/health check"),
    ]
    out = ['<svg class="legend" width="1100" height="24" viewBox="0 0 1100 24" role="img" aria-label="legend">']
    x = 4
    for key, text in items:
        out.append(f'<rect class="bar k-{key}" x="{x}" y="5" width="22" height="14"/>')
        if key == "generate":
            out.append(f'<rect class="pipe" x="{x + 5}" y="8" width="12" height="8"/>')
        out.append(f'<text x="{x + 28}" y="16">{esc(text)}</text>')
        x += 44 + 6 * len(text)
    out.append(cross_path(x + 6, 12))
    out.append(f'<text x="{x + 18}" y="16">failed request (at the client\'s receive time)</text>')
    out.append("</svg>")
    return "".join(out)


# --- HTML -------------------------------------------------------------------------------------------

_CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px; color: #1b1f24;
       background: #ffffff; font-size: 14px; line-height: 1.4; }
h1 { font-size: 22px; margin: 0 0 4px 0; }
h2 { font-size: 18px; margin: 28px 0 8px 0; border-bottom: 1px solid #d0d7de; padding-bottom: 4px; }
h3 { font-size: 15px; margin: 18px 0 6px 0; }
.meta { color: #57606a; font-size: 12px; }
.banner { background: #fff3c4; border: 1px solid #d4a72c; padding: 8px 12px; margin: 12px 0; font-weight: 600; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; vertical-align: top; text-align: left; }
th { background: #f6f8fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.cell { font-variant-numeric: tabular-nums; white-space: nowrap; }
td.pass { background: #dafbe1; }
td.fail { background: #ffd8d3; }
span.fit { background: #1a7f37; color: #ffffff; }
span.unfit { background: #cf222e; color: #ffffff; }
span.fit, span.unfit { font-weight: 700; padding: 0 6px; border-radius: 3px; white-space: nowrap; }
span.held { background: #ddf4ff; color: #0550ae; border: 1px solid #54aeff; }
span.broken { background: #fff1d6; color: #7d4e00; border: 1px solid #d4a72c; }
span.held, span.broken { font-weight: 700; padding: 0 4px; border-radius: 3px; white-space: nowrap; }
table.matrix { font-size: 13px; }
table.matrix th, table.matrix td { padding: 1px 6px; white-space: nowrap; vertical-align: middle;
                                   line-height: 1.3; }
h2.summary { margin-top: 12px; }
.banner.incomplete { margin: 6px 0; padding: 4px 12px; }
table.matrix tbody th.name { background: #ffffff; font-weight: 600; }
table.matrix td.cell { color: #1b1f24; background: #ffffff; }
table.matrix td.cell.unchecked { color: #57606a; }
table.matrix td.cell.broken { box-shadow: inset 3px 0 0 #d4a72c; }
table.matrix tbody tr:nth-child(even) td, table.matrix tbody tr:nth-child(even) th.name { background: #f8f9fa; }
table.matrix tbody tr:hover td, table.matrix tbody tr:hover th.name { background: #eef3fb; }
span.errs { color: #cf222e; font-weight: 700; }
.l-fast { color: #1b1f24; }
.l-degraded { color: #7d4e00; font-style: italic; }
.l-blocked { color: #82071e; font-weight: 700; }
.v-CONFIRMED { background: #dafbe1; font-weight: 700; }
.v-REFUTED { background: #ffd8d3; font-weight: 700; }
.v-DEPENDS { background: #fff3c4; font-weight: 700; }
.v-UNTESTED { color: #57606a; }
.recommendation { background: #f0f7ff; border: 1px solid #9cc3f0; padding: 8px 12px; }
pre { background: #f6f8fa; padding: 8px; overflow-x: auto; font-size: 12px; }
.figures { color: #57606a; font-size: 12px; margin: 2px 0 4px 0; }
svg.timeline { display: block; max-width: 100%; height: auto; font-size: 11px; }
svg.legend { display: block; font-size: 12px; }
svg text { fill: #1b1f24; }
.lane-bg.shade-0 { fill: #ffffff; }
.lane-bg.shade-1 { fill: #f3f5f8; }
.lane-label { font-weight: 600; }
.grid path { stroke: #d0d7de; stroke-width: 1; fill: none; }
.axis-line { stroke: #57606a; stroke-width: 1; }
.tick-label, .axis-title { text-anchor: middle; fill: #57606a; }
.k-api { fill: #1f77b4; }
.k-demo { fill: #9467bd; }
.k-generate { fill: #ff7f0e; }
.k-health { fill: #2ca02c; }
.pipe { fill: #a34a00; }
rect.bar { stroke: #ffffff; stroke-width: 1; }
.client { fill: #7f7f7f; }
.failed rect.bar { stroke: #d62728; stroke-width: 2; }
.cross { stroke: #d62728; stroke-width: 2.5; fill: none; }
.wait { stroke: #d62728; stroke-width: 1; stroke-dasharray: 3 3; }
.empty { fill: #57606a; }
"""


def _verdict_mark(passed: bool) -> str:
    # Expectations are the tool's own correctness: blue when they hold, amber when not; never fit's green/red.
    return '<span class="held">✓ PASS</span>' if passed else '<span class="broken">✗ FAIL</span>'


def _fit_mark(result: ProfileResult) -> str:
    return '<span class="fit">● FIT</span>' if result.fit else '<span class="unfit">■ UNFIT</span>'


def _predicted_mark(result: ProfileResult) -> str:
    if result.status != Status.OK:
        return f'<span class="broken">✗ {esc(result.status.replace("_", " "))}</span>'
    return (
        '<span class="held">✓ as predicted</span>'
        if result.passed
        else '<span class="broken">✗ NOT as predicted</span>'
    )


def _scenario_names(profiles: Iterable[ProfileResult]) -> list[str]:
    names: list[str] = []
    for result in profiles:
        for s in result.scenarios:
            if s.scenario not in names:
                names.append(s.scenario)
    return names


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def _cell_class(verdicts: Sequence[Verdict]) -> str:
    """What a scenario cell's expectations came to: ``held``, ``broken`` or ``unchecked`` (never fit's colours)."""
    if not verdicts:
        return "unchecked"
    return "held" if all(v.passed for v in verdicts) else "broken"


VERDICT_COLUMNS = ("fit to serve", "as predicted", "liveness")
"""The summary's verdict columns, right after the profile's name: the first screen shows them for every profile."""


def summary_matrix(run: ProbeRun) -> str:
    """One line per profile: its verdicts first, then the figures of each scenario.

    *Fit to serve* (green ● FIT / red ■ UNFIT), *as predicted* (blue ✓ / amber ✗) and
    liveness (text on white) each have their own marks. The scenario cells are what
    was measured, on white whatever the verdicts; a cell with a broken expectation
    gets the amber ✗ of *as predicted*, with the count.
    """
    names = _scenario_names(run.profiles)
    out = ['<table class="matrix"><thead><tr><th>profile</th>']
    out.extend(f'<th class="verdict">{name}</th>' for name in VERDICT_COLUMNS)
    out.append("<th>ready</th>")
    out.extend(f"<th>{esc(name)}</th>" for name in names)
    out.append("</tr></thead><tbody>")
    for p_index, result in enumerate(run.profiles):
        out.append(
            f'<tr data-profile="{esc(result.name)}"><th class="name"><a href="#p{p_index}">{esc(result.name)}</a></th>'
        )
        unfit = "; ".join(result.assessment.unfit) if result.assessment else ""
        out.append(f'<td class="verdict fit-col" title="{esc(unfit)}">{_fit_mark(result)}</td>')
        out.append(f'<td class="verdict predicted-col">{_predicted_mark(result)}</td>')
        live = str(result.assessment.liveness) if result.assessment else "-"
        evidence = result.assessment.liveness_evidence if result.assessment else ""
        # The scenario that decided the class (its worst), as in the terminal's "degraded (cpu)".
        worst = result.assessment.liveness_scenario if result.assessment else ""
        decided = f' <span class="meta">({esc(worst)})</span>' if worst else ""
        out.append(f'<td class="verdict l-{esc(live)}" title="{esc(evidence)}">{esc(live)}{decided}</td>')
        out.append(f'<td class="num">{_fmt_s(result.ready_seconds)}</td>')
        by_name = {s.scenario: (s_index, s) for s_index, s in enumerate(result.scenarios)}
        for name in names:
            found = by_name.get(name)
            if found is None:
                out.append('<td class="cell unchecked">-</td>')
                continue
            s_index, scenario = found
            figures = metrics.summary(scenario.records)
            state = _cell_class(scenario.verdicts)
            broken = sum(not v.passed for v in scenario.verdicts)
            mark = f' <span class="broken" title="expectations that failed">✗{broken}</span>' if broken else ""
            errors = f'<span class="errs">err {figures.error_count}</span>' if figures.error_count else "err 0"
            out.append(
                f'<td class="cell {state}" data-profile="{esc(result.name)}" data-scenario="{esc(name)}">'
                f'<a href="#p{p_index}s{s_index}">{figures.makespan_s:.2f} s</a> · &#215;{figures.overlap} · '
                f"p99 {_ms(figures.health_p99_ms)} · {errors}{mark}</td>"
            )
        out.append("</tr>")
    out.append("</tbody></table>")
    out.append(
        '<p class="meta">Verdicts: <span class="fit">● FIT</span> / <span class="unfit">■ UNFIT</span> to serve '
        '(hover for why); <span class="held">✓ as predicted</span> / <span class="broken">✗ NOT as predicted</span> '
        "(the probe's expectations); liveness of /health while work ran (hover for the figures). "
        "Each scenario cell: makespan (first work request sent to last answered) · &#215;the most work requests "
        "running at once · the 99th percentile of /health latency · failed work requests"
        ' · <span class="broken">✗n</span> expectations that failed there.</p>'
    )
    return "".join(out)


def recommendation_html(run: ProbeRun) -> str:
    """The recommended profile and why the others lost."""
    rec = run.recommendation
    if rec is None:
        return '<div class="recommendation">No profile is fit to serve in this run; nothing is recommended.</div>'
    out = [
        f'<div class="recommendation"><p><strong>Recommended: {esc(rec.profile.name)}</strong>'
        + (f" (tie: {esc(', '.join(rec.tied))})" if rec.tied else "")
        + f" — {esc(rec.why)}.</p>"
    ]
    if rec.rule:
        out.append(f'<p class="meta">Rule: {esc(rec.rule)}.</p>')
    if rec.rejected:
        out.append("<p>Why the others lost:</p><ul>")
        out.extend(f"<li><strong>{esc(name)}</strong>: {esc(reason)}</li>" for name, reason in rec.rejected.items())
        out.append("</ul>")
    out.append("</div>")
    return "".join(out)


def load_html(decision: LoadDecision) -> str:
    """The load check (``--target-rate``): each fit profile held at the rate, and the recommendation against it."""
    out = [
        '<div class="recommendation"><p>'
        + (
            f"<strong>Recommended for {decision.rate:g}/s: {esc(decision.chosen)}</strong> — {esc(decision.why)}."
            if decision.chosen is not None
            else f"<strong>No fit profile carries {decision.rate:g}/s</strong>: {esc(decision.why)}."
        )
        + "</p><ul>"
    ]
    out.extend(f"<li>{esc(load_check_line(check, decision.rate))}</li>" for check in decision.checks)
    out.append(f'</ul><p class="meta">Rule: {esc(decision.rule)}.</p></div>')
    return "".join(out)


def conformance_html(run: ProbeRun) -> str:
    """Each backend's server conformance check: its server and version, every check's outcome and counts."""
    if not run.conformance:
        return "<p>No server conformance check in this run (it runs with the mixed scenario).</p>"
    out = [
        '<table class="claims"><thead><tr><th>backend</th><th>server</th><th>s</th><th>check</th>'
        "<th>outcome</th><th>observed</th></tr></thead><tbody>"
    ]
    for check in run.conformance:
        server = f"{check.server} {check.version or '?'}"
        backend = check.backend + (" + relay" if check.relay else "")
        head = f'<td>{esc(backend)}</td><td>{esc(server)}</td><td class="num">{check.seconds:.1f}</td>'
        if check.error:
            out.append(f'<tr>{head}<td colspan="3">{esc(check.error)}</td></tr>')
            continue
        for outcome in check.outcomes:
            verdict = "pass" if outcome.passed else "FAIL"
            css = "v-CONFIRMED" if outcome.passed else "v-REFUTED"
            observed = outcome.observed + (f" — {outcome.mechanism}" if outcome.mechanism else "")
            out.append(
                f'<tr>{head}<td>{esc(outcome.check)}</td><td class="{css}">{verdict}</td><td>{esc(observed)}</td></tr>'
            )
            head = '<td></td><td></td><td class="num"></td>'
    out.append("</tbody></table>")
    return "".join(out)


def claims_html(run: ProbeRun) -> str:
    """The write-up's claims with their verdicts and evidence."""
    if not run.claims:
        return "<p>No claims were judged in this run.</p>"
    out = ['<table class="claims"><thead><tr><th>#</th><th>claim</th><th>verdict</th><th>evidence</th></tr></thead>']
    out.append("<tbody>")
    for claim in run.claims:
        out.append(
            f'<tr><td class="num">{claim.number}</td><td>{esc(claim.text)}</td>'
            f'<td class="v-{esc(claim.verdict)}">{esc(claim.verdict)}</td><td>{esc(claim.evidence)}</td></tr>'
        )
    out.append("</tbody></table>")
    return "".join(out)


def expectations_html(result: ProfileResult) -> str:
    """One profile's expectations with PASS/FAIL."""
    if not result.verdicts:
        return '<p class="meta">No expectations were checked.</p>'
    out = [
        '<table class="expectations"><thead><tr><th>scenario</th><th>expectation</th><th>observed</th>'
        "<th></th><th>why</th></tr></thead><tbody>"
    ]
    for v in result.verdicts:
        out.append(
            f"<tr><td>{esc(v.scenario)}</td><td>{esc(v.expectation)}</td><td>{esc(v.observed)}</td>"
            f"<td>{_verdict_mark(v.passed)}</td><td>{esc(v.why)}</td></tr>"
        )
    out.append("</tbody></table>")
    return "".join(out)


def scenario_html(result: ProfileResult, scenario: ScenarioResult, anchor: str) -> str:
    """One burst: its figures, its timeline and what the server's log said."""
    figures = metrics.summary(scenario.records)
    per_pid_text = ", ".join(f"pid {pid}: {count}" for pid, count in figures.count_by_pid.items())
    error_text = ", ".join(f"{name}: {count}" for name, count in figures.errors.items())
    out = [
        f'<section class="scenario" id="{anchor}"><h3>{esc(result.name)} · {esc(scenario.scenario)}</h3>',
        f'<p class="figures">{scenario.n} requests of {scenario.seconds:g} s · makespan '
        f"{figures.makespan_s:.2f} s · max overlap {figures.overlap}"
        + (f" · served {esc(per_pid_text)}" if per_pid_text else "")
        + f" · /health p99 {_ms(figures.health_p99_ms)} over {figures.health_checks} checks"
        + (f" · errors: {esc(error_text)}" if error_text else "")
        + "</p>",
    ]
    if scenario.note:
        out.append(f'<p class="meta">{esc(scenario.note)}</p>')
    out.append(demo_steps_html(scenario))
    out.append(timeline_svg(scenario, label=f"{result.name} {scenario.scenario} timeline"))
    if scenario.log_events:
        out.append('<p class="meta">server log:</p><ul class="log">')
        out.extend(f"<li><code>{esc(e.kind)}</code> {esc(e.line)}</li>" for e in scenario.log_events)
        out.append("</ul>")
    out.append("</section>")
    return "".join(out)


def demo_steps_html(scenario: ScenarioResult) -> str:
    """Which process answered each step of every demo click: the evidence of a split Gradio queue."""
    clicks = [r for r in scenario.records if r.kind == Kind.DEMO]
    if not clicks:
        return ""
    out = [
        '<table class="steps"><thead><tr><th>click</th><th>queue join pid</th><th>event stream pid</th>'
        "<th>result pid</th><th>queue statuses</th><th>outcome</th></tr></thead><tbody>"
    ]
    for r in clicks:
        pids = set(r.steps.values()) | ({r.pid} if r.pid is not None else set())
        statuses = ", ".join(
            f"rank {q.rank} at +{(q.at_ns - r.sent_ns) / 1e6:.0f} ms" for q in r.queue if q.rank is not None
        )
        out.append(
            f'<tr class="{"split" if len(pids) > 1 else ""}"><td class="num">{r.index}</td>'
            f"<td>{r.steps.get('join', '-')}</td><td>{r.steps.get('stream', '-')}</td>"
            f"<td>{r.pid if r.pid is not None else '-'}</td><td>{esc(statuses or '-')}</td>"
            f'<td class="{"pass" if r.ok else "fail"}">{esc("ok" if r.ok else (r.error or "failed"))}</td></tr>'
        )
    out.append("</tbody></table>")
    return "".join(out)


def profile_html(result: ProfileResult, p_index: int) -> str:
    """One profile: its expectations and one timeline per burst."""
    profile = result.profile
    description = profile.description
    facts = [f"backend {profile.backend}", f"workers {profile.workers}", f"mode {profile.mode}"]
    facts.append(f"concurrency_limit {profile.concurrency_limit}")
    if result.ready_seconds is not None:
        facts.append(f"ready in {result.ready_seconds:.2f} s")
    if result.stop_seconds is not None:
        facts.append(f"stopped in {result.stop_seconds:.2f} s" + (" (forced)" if result.stop_forced else ""))
    if result.source:
        facts.append(f"from {result.source}")
    out = [
        f'<section class="profile" id="p{p_index}" data-profile="{esc(result.name)}">',
        f"<h2>{esc(result.name)} {_fit_mark(result)} {_predicted_mark(result)}</h2>",
    ]
    if result.assessment is not None and result.assessment.unfit:
        out.append("<p>Not fit to serve:</p><ul>")
        out.extend(f"<li>{esc(reason)}</li>" for reason in result.assessment.unfit)
        out.append("</ul>")
    if description:
        out.append(f"<p>{esc(description)}</p>")
    out.append(f'<p class="meta">{esc(" · ".join(facts))}</p>')
    if result.status != Status.OK:
        out.append(f"<p><strong>{esc(result.status.replace('_', ' '))}</strong>: {esc(result.error or '')}</p>")
        if result.log_tail:
            out.append(f"<pre>{esc(result.log_tail)}</pre>")
    out.append(expectations_html(result))
    for s_index, scenario in enumerate(result.scenarios):
        out.append(scenario_html(result, scenario, f"p{p_index}s{s_index}"))
    out.append("</section>")
    return "".join(out)


def _machine_html(run: ProbeRun) -> str:
    m: dict[str, Any] = run.machine
    parts = []
    for key in ("cores", "python", "platform"):
        if key in m:
            parts.append(f"{key} {m[key]}")
    versions = m.get("versions")
    if isinstance(versions, dict):
        parts.extend(f"{name} {version}" for name, version in versions.items() if version)
    options = ", ".join(f"{key}={value}" for key, value in run.options.items())
    return (
        f'<p class="meta">run {esc(run.created)} · {esc(" · ".join(parts))}</p>'
        f'<p class="meta">options: {esc(options)}</p>'
    )


def render_html(run: ProbeRun, *, comparison: str = "") -> str:
    """The whole report as one self-contained HTML page.

    ``comparison``: a section comparing the run with a baseline (``launch probe --baseline``), shown first.
    """
    names = ", ".join(p.name for p in run.profiles) or "no profiles"
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"/>',
        '<meta name="viewport" content="width=device-width, initial-scale=1"/>',
        f"<title>launch probe report — {esc(run.created)}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>launch probe report</h1>",
    ]
    if not run.complete:
        out.append(
            '<div class="banner incomplete">INCOMPLETE: the run was interrupted; the results so far are shown.</div>'
        )
    out.append(comparison)
    # The verdicts first: the summary fits the first screen, the run's particulars come after it.
    out.append('<h2 class="summary">Summary</h2>')
    out.append(summary_matrix(run))
    out.append(f'<p class="meta">profiles: {esc(names)}</p>')
    out.append(_machine_html(run))
    out.append("<h2>Recommendation</h2>")
    out.append(recommendation_html(run))
    if run.load is not None:
        out.append(f"<h2>Load: {run.load.rate:g}/s of {esc(run.load.route)} at p99 &le; {run.load.p99_s:g} s</h2>")
        out.append(load_html(run.load))
    out.append("<h2>Server conformance</h2>")
    out.append(conformance_html(run))
    out.append("<h2>The write-up's claims</h2>")
    out.append(claims_html(run))
    out.append("<h2>Profiles</h2>")
    out.append(
        '<p class="meta">Timelines: one lane per worker process (one per thread where a process ran work on '
        "several threads); each bar is one request's work, from its start to its end on the server, on the "
        "machine's shared monotonic clock. Hover over a bar for its numbers.</p>"
    )
    out.append(legend_svg())
    out.extend(profile_html(result, p_index) for p_index, result in enumerate(run.profiles))
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _route_cell(route: RouteResult) -> str:
    """One route under one profile: its class in words, on fit's colours only when it fails."""
    failed = route.route_class == FAILS
    return f'<td class="cell{" fail" if failed else ""}">{esc(describe_route(route))}</td>'


def app_matrix(run: AppProbeRun) -> str:
    """A user app's probe: one row per route, one column per profile, the advice of the worst class seen."""
    head = "".join(
        f"<th>{esc(r.profile)}"
        + (f'<br/><span class="meta">= {esc(", ".join(r.same_as))}</span>' if r.same_as else "")
        + "</th>"
        for r in run.profiles
    )
    rows = []
    for index, route in enumerate(run.profiles[0].routes if run.profiles else ()):
        worst = min((r.routes[index] for r in run.profiles), key=lambda r: CLASSES.index(r.route_class))
        cells = "".join(_route_cell(result.routes[index]) for result in run.profiles)
        rows.append(
            f'<tr><th class="name">{esc(route.route)}</th><td>{esc(route.request)}</td>{cells}'
            f"<td>{esc(worst.advice)}</td></tr>"
        )
    figures = "".join(
        f'<td class="num">ready {r.ready_seconds:.1f} s · stopped {r.stop_seconds:.1f} s'
        + (" (forced)" if r.stop_forced else "")
        + f" · {r.processes} process(es) · total {r.makespan_s:.2f} s</td>"
        for r in run.profiles
    )
    return (
        f'<table class="matrix"><thead><tr><th>route</th><th>request</th>{head}<th>advice</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody>"
        f'<tfoot><tr><th class="name">server</th><td></td>{figures}<td></td></tr></tfoot></table>'
    )


def render_app_html(run: AppProbeRun, *, comparison: str = "") -> str:
    """A user app's probe (``launch probe --app``, ``launch report``) as one self-contained HTML page.

    ``comparison``: a section comparing the run with a baseline (``--baseline``), shown first.
    """
    rec = run.recommendation
    if rec.profile is None:
        chosen = "<p><strong>No profile qualifies.</strong></p>"
    else:
        tied = f" (tied with {esc(', '.join(rec.tied_with))})" if rec.tied_with else ""
        chosen = f"<p><strong>Recommended: {esc(rec.profile)}</strong>{tied} — {esc(rec.reason)}.</p>"
    rejected = "".join(f"<li><strong>{esc(name)}</strong>: {esc(why)}</li>" for name, why in rec.rejected.items())
    machine = run.machine
    parts = [f"{key} {machine[key]}" for key in ("cores", "python", "platform") if key in machine]
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"/>',
        '<meta name="viewport" content="width=device-width, initial-scale=1"/>',
        f"<title>launch probe --app {esc(run.app)} — {esc(run.created)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>launch probe --app {esc(run.app)}</h1>",
        comparison,
        '<h2 class="summary">Recommendation</h2>',
        f'<div class="recommendation">{chosen}' + (f"<ul>{rejected}</ul>" if rejected else ""),
        f'<p class="meta">Rule: {esc(rec.rule)}.</p></div>' if rec.rule else "</div>",
    ]
    if run.load is not None:
        out.append(f"<h2>Load: {run.load.rate:g}/s of {esc(run.load.route)} at p99 &le; {run.load.p99_s:g} s</h2>")
        out.append(load_html(run.load))
    out.append("<h2>Routes</h2>")
    out.append(app_matrix(run))
    demo = ", ".join(run.demo_paths) or "none"
    out.append(
        f'<p class="meta">scenario file {esc(run.scenario_file)} · Gradio demo at {esc(demo)} · '
        f"run {esc(run.created)} · {esc(' · '.join(parts))}</p>"
    )
    out.append("</body></html>")
    return "\n".join(out) + "\n"
