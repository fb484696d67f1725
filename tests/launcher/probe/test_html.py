"""The HTML report: its timelines checked against the data, its tables, its escaping, and a real browser."""

from __future__ import annotations

import dataclasses
import itertools
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest

from launcher.probe import metrics
from launcher.probe.html import (
    _CSS,
    COLOURS,
    HEALTH_QUIET_S,
    HEALTH_ROW_HEIGHT,
    LABEL_WIDTH,
    PLOT_WIDTH,
    TICK_MIN_WIDTH,
    Scale,
    layout,
    nice_step,
    pack_rows,
    ranges,
    render_html,
    time_range,
    timeline_svg,
)
from launcher.probe.model import Assessment, Liveness, ProbeRun, RequestRecord, ScenarioResult
from tests.launcher.probe.records import back_to_back, health, ns, result, scenario, work
from tests.launcher.probe.sample_run import HOSTILE, answered, assessed_sample_run, sample_run

S = 1_000_000_000
TOLERANCE = 0.011
"""Coordinates are written with two decimals."""


def _class(element: ET.Element) -> list[str]:
    return element.get("class", "").split()


def _svg(run: ProbeRun, profile: str, scenario_name: str) -> ET.Element:
    root = ET.fromstring(render_html(run))
    for svg in root.iter("svg"):
        if svg.get("aria-label") == f"{profile} {scenario_name} timeline":
            return svg
    raise AssertionError(f"no timeline for {profile}/{scenario_name}")


def _scenario(run: ProbeRun, profile: str, scenario_name: str) -> ScenarioResult:
    return next(s for p in run.profiles if p.name == profile for s in p.scenarios if s.scenario == scenario_name)


def _lanes(svg: ET.Element) -> list[ET.Element]:
    return [g for g in svg.iter("g") if "lane" in _class(g)]


def _requests(element: ET.Element) -> list[ET.Element]:
    return [g for g in element.iter("g") if "req" in _class(g)]


_SUBPATH = re.compile(r"([Mm])(-?[\d.]+) (-?[\d.]+)h([\d.]+)v([\d.]+)h-([\d.]+)z")


def _positions(text: str) -> list[int]:
    """``data-records`` (``3-5 7``) as positions."""
    out: list[int] = []
    for run in text.split():
        first, _, last = run.partition("-")
        out.extend(range(int(first), int(last or first) + 1))
    return out


def _health_ticks(svg: ET.Element) -> dict[int, tuple[float, float, float, float, ET.Element]]:
    """Each drawn health tick by its record position: x, y, width, height and the path that holds it."""
    ticks: dict[int, tuple[float, float, float, float, ET.Element]] = {}
    for path in svg.iter("path"):
        if path.get("data-records") is None:
            continue
        boxes = _SUBPATH.findall(path.get("d", ""))
        assert "".join(f"{m}{x} {y}h{w}v{h}h-{w2}z" for m, x, y, w, h, w2 in boxes) == path.get("d")
        assert [m for m, *_ in boxes] == ["M"] + ["m"] * (len(boxes) - 1)
        positions = _positions(path.get("data-records", ""))
        assert len(positions) == len(boxes)
        at_x = at_y = 0.0
        for position, (_, x, y, w, h, w2) in zip(positions, boxes, strict=True):
            assert w == w2 and position not in ticks
            at_x, at_y = at_x + float(x), at_y + float(y)  # the first is absolute, from 0
            ticks[position] = (at_x, at_y, float(w), float(h), path)
    return ticks


def _expected_scale(scenario: ScenarioResult) -> Scale:
    # Computed here from the data, not taken from the module under test.
    points = [scenario.started_ns, scenario.finished_ns]
    for r in scenario.records:
        points += [r.sent_ns, r.received_ns, *(t for t in (r.start_ns, r.end_ns) if t is not None)]
    return Scale(min(points), max(points), LABEL_WIDTH, LABEL_WIDTH + PLOT_WIDTH)


def _answered(record: RequestRecord) -> int:
    return record.end_ns if record.end_ns is not None else record.received_ns


ALL_TIMELINES = [
    ("uvicorn-1-sync", "sleep"),
    ("uvicorn-1-sync", "generate"),
    ("gunicorn-3-sync", "mixed"),
]


class TestGeometryHelpers:
    def test_scale_maps_the_range_linearly(self) -> None:
        scale = Scale(10 * S, 12 * S, 100, 300)
        assert scale(10 * S) == 100
        assert scale(12 * S) == 300
        assert scale(11 * S) == 200
        assert scale(int(10.5 * S)) == 150

    def test_empty_range_is_refused(self) -> None:
        with pytest.raises(ValueError):
            Scale(5, 5)

    @pytest.mark.parametrize(
        ("span", "target", "step"),
        [(1.0, 8, 0.2), (2.0, 8, 0.5), (10.0, 8, 2.0), (33.0, 8, 5.0), (0.05, 8, 0.01), (100.0, 10, 10.0)],
    )
    def test_nice_step(self, span: float, target: int, step: float) -> None:
        assert nice_step(span, target) == pytest.approx(step)

    def test_ticks_are_round_seconds_from_the_origin(self) -> None:
        origin = 1000 * S
        scale = Scale(origin, origin + 2 * S, 0, 1000)
        ticks = scale.ticks(origin)
        assert [label for _, label in ticks] == ["0.0 s", "0.5 s", "1.0 s", "1.5 s", "2.0 s"]
        assert [x for x, _ in ticks] == pytest.approx([0, 250, 500, 750, 1000])

    def test_ticks_of_a_range_starting_before_the_origin(self) -> None:
        origin = 1000 * S
        scale = Scale(origin - 2 * S, origin + 8 * S, 0, 1000)
        ticks = scale.ticks(origin)
        assert [label for _, label in ticks] == ["-2 s", "0 s", "2 s", "4 s", "6 s", "8 s"]
        assert [x for x, _ in ticks] == pytest.approx([0, 200, 400, 600, 800, 1000])

    def test_pack_rows(self) -> None:
        assert pack_rows([]) == []
        assert pack_rows([(0, 10), (10, 20), (20, 30)]) == [0, 0, 0]
        assert pack_rows([(0, 10), (5, 15), (12, 20)]) == [0, 1, 0]
        assert pack_rows([(0, 10), (0, 10), (0, 10)]) == [0, 1, 2]

    def test_packed_rows_never_overlap(self) -> None:
        intervals = [(i * 7 % 50, i * 7 % 50 + 5 + i % 9) for i in range(40)]
        rows = pack_rows(intervals)
        for row in set(rows):
            spans = sorted(iv for iv, r in zip(intervals, rows, strict=True) if r == row)
            assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))

    def test_time_range_covers_every_record(self) -> None:
        s = _scenario(sample_run(), "gunicorn-3-sync", "mixed")
        lo, hi = time_range(s)
        assert lo <= min(r.sent_ns for r in s.records)
        assert hi >= max(r.received_ns for r in s.records)


class TestTimeline:
    @pytest.mark.parametrize(("profile", "name"), ALL_TIMELINES)
    def test_every_request_drawn_exactly_once(self, profile: str, name: str) -> None:
        run = sample_run()
        s = _scenario(run, profile, name)
        svg = _svg(run, profile, name)
        drawn = Counter(int(g.get("data-record", "-1")) for g in _requests(svg))
        drawn.update(list(_health_ticks(svg)))
        assert drawn == Counter(range(len(s.records)))

    @pytest.mark.parametrize(("profile", "name"), ALL_TIMELINES)
    def test_scale_is_the_burst_range(self, profile: str, name: str) -> None:
        run = sample_run()
        s = _scenario(run, profile, name)
        svg = _svg(run, profile, name)
        expected = _expected_scale(s)
        assert int(svg.get("data-lo-ns", "0")) == expected.lo_ns
        assert int(svg.get("data-hi-ns", "0")) == expected.hi_ns
        assert int(svg.get("data-origin-ns", "0")) == s.started_ns

    @pytest.mark.parametrize(("profile", "name"), ALL_TIMELINES)
    def test_work_bars_sit_in_their_pid_lane_at_their_times(self, profile: str, name: str) -> None:
        run = sample_run()
        s = _scenario(run, profile, name)
        scale = _expected_scale(s)
        svg = _svg(run, profile, name)
        checked = 0
        for lane in _lanes(svg):
            y0, y1 = float(lane.get("data-y0", "nan")), float(lane.get("data-y1", "nan"))
            for g in _requests(lane):
                record = s.records[int(g.get("data-record", "-1"))]
                if g.get("data-shape") != "bar":
                    continue
                assert record.has_work_interval and record.kind != "health"
                assert record.start_ns is not None and record.end_ns is not None
                assert lane.get("data-lane") == "worker"
                assert lane.get("data-pid") == g.get("data-pid") == str(record.pid)
                assert g.get("data-kind") == record.kind
                assert g.get("data-index") == str(record.index)
                assert g.get("data-work") == (record.work or "")
                (bar,) = [r for r in g.iter("rect") if "bar" in _class(r)]
                x, width = float(bar.get("x", "nan")), float(bar.get("width", "nan"))
                assert x == pytest.approx(scale(record.start_ns), abs=TOLERANCE)
                assert width == pytest.approx(scale(record.end_ns) - scale(record.start_ns), abs=TOLERANCE)
                y, height = float(bar.get("y", "nan")), float(bar.get("height", "nan"))
                assert y0 <= y and y + height <= y1
                checked += 1
        assert checked == len([r for r in s.records if r.kind != "health" and r.has_work_interval])

    def test_bars_are_coloured_by_kind(self) -> None:
        run = sample_run()
        for profile, name in ALL_TIMELINES:
            s = _scenario(run, profile, name)
            for g in _requests(_svg(run, profile, name)):
                record = s.records[int(g.get("data-record", "-1"))]
                for rect in g.iter("rect"):
                    if "bar" in _class(rect):
                        expected = "k-generate" if record.work == "generate" else f"k-{record.kind}"
                        assert expected in _class(rect)

    def test_threads_of_a_pid_get_sub_lanes(self) -> None:
        run = sample_run()
        s = _scenario(run, "uvicorn-1-sync", "sleep")
        svg = _svg(run, "uvicorn-1-sync", "sleep")
        lanes = [lane for lane in _lanes(svg) if lane.get("data-lane") == "worker"]
        assert [(lane.get("data-pid"), lane.get("data-thread")) for lane in lanes] == [
            ("101", "11"),
            ("101", "12"),
            ("101", "13"),
        ]
        for lane in lanes:
            for g in _requests(lane):
                record = s.records[int(g.get("data-record", "-1"))]
                assert str(record.thread) == lane.get("data-thread") == g.get("data-thread")
        # Lanes are stacked, never overlapping.
        spans = [(float(lane.get("data-y0", "0")), float(lane.get("data-y1", "0"))) for lane in _lanes(svg)]
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))

    def test_one_lane_per_pid_when_each_ran_on_one_thread(self) -> None:
        run = sample_run()
        svg = _svg(run, "gunicorn-3-sync", "mixed")
        workers = [lane.get("data-pid") for lane in _lanes(svg) if lane.get("data-lane") == "worker"]
        assert workers == ["201", "202", "203"]
        kinds = [lane.get("data-lane") for lane in _lanes(svg)]
        assert kinds == ["worker", "worker", "worker", "client", "errors", "health"]

    def test_overlapping_requests_in_one_lane_are_stacked(self) -> None:
        records = [work("api", 7, 0, 1, index=0), work("api", 7, 0.5, 1.5, index=1), work("api", 7, 1.5, 2, index=2)]
        timeline = layout(scenario("sleep", records))
        (lane,) = timeline.lanes
        assert lane.rows == 2
        assert [m.row for m in lane.marks] == [0, 1, 0]

    def test_failed_requests_are_marked(self) -> None:
        run = sample_run()
        s = _scenario(run, "gunicorn-3-sync", "mixed")
        scale = _expected_scale(s)
        svg = _svg(run, "gunicorn-3-sync", "mixed")
        failed = [g for g in _requests(svg) if g.get("data-failed") == "true"]
        assert sorted(int(g.get("data-record", "-1")) for g in failed) == [
            i for i, r in enumerate(s.records) if not r.ok
        ]
        (errors_lane,) = [lane for lane in _lanes(svg) if lane.get("data-lane") == "errors"]
        in_errors = _requests(errors_lane)
        assert {g.get("data-record") for g in in_errors} == {
            str(i) for i, r in enumerate(s.records) if not r.ok and not r.has_work_interval
        }
        for g in failed:
            crosses = [p for p in g.iter("path") if "cross" in _class(p)]
            assert len(crosses) == 1
            record = s.records[int(g.get("data-record", "-1"))]
            if not record.has_work_interval:
                # At the client's receive time, with a dashed line back to when it was sent.
                assert float(crosses[0].get("data-x", "nan")) == pytest.approx(scale(record.received_ns), abs=TOLERANCE)
                (wait,) = list(g.iter("line"))
                assert float(wait.get("x1", "nan")) == pytest.approx(scale(record.sent_ns), abs=TOLERANCE)
        # The attributed failure (HTTP 500) is still a bar in its worker's lane.
        (http_500,) = [g for g in failed if g.get("data-shape") == "bar"]
        assert http_500.get("data-pid") == "203"

    def test_health_ticks(self) -> None:
        run = sample_run()
        for profile, name in ALL_TIMELINES:
            s = _scenario(run, profile, name)
            scale = _expected_scale(s)
            svg = _svg(run, profile, name)
            (health_lane,) = [lane for lane in _lanes(svg) if lane.get("data-lane") == "health"]
            assert not _requests(health_lane)
            ticks = _health_ticks(health_lane)
            assert sorted(ticks) == [i for i, r in enumerate(s.records) if r.kind == "health" and r.ok]
            y0, y1 = float(health_lane.get("data-y0", "nan")), float(health_lane.get("data-y1", "nan"))
            for position, (x, y, width, height, path) in ticks.items():
                record = s.records[position]
                assert x == pytest.approx(scale(record.sent_ns), abs=TOLERANCE)
                expected = max(TICK_MIN_WIDTH, scale(_answered(record)) - scale(record.sent_ns))
                assert width == pytest.approx(expected, abs=TOLERANCE)
                assert height == HEALTH_ROW_HEIGHT and y0 <= y and y + height <= y1
                assert path.find("title") is not None

    def test_health_latency_is_drawn_to_the_server_answer(self) -> None:
        run = sample_run()
        s = _scenario(run, "uvicorn-1-sync", "generate")
        (check,) = [r for r in s.records if r.kind == "health"]
        # Sent 0.3, handler ran 0.45, client read it 0.5: the tick ends at 0.45.
        assert metrics.health_latency(check) == pytest.approx(0.15)
        scale = _expected_scale(s)
        svg = _svg(run, "uvicorn-1-sync", "generate")
        ((_, _, width, _, path),) = _health_ticks(svg).values()
        assert width == pytest.approx(scale(ns(0.45)) - scale(ns(0.3)), abs=TOLERANCE)
        # Slower than the quiet line: a tooltip of its own, with its wait.
        title = path.find("title")
        assert title is not None and title.text == "/health #0 · pid 101 · answered after 150 ms"

    def test_quick_health_checks_share_one_path(self) -> None:
        run = sample_run()
        s = _scenario(run, "uvicorn-1-sync", "sleep")
        svg = _svg(run, "uvicorn-1-sync", "sleep")
        (quick,) = [p for p in svg.iter("path") if "ticks" in _class(p)]
        assert quick.get("data-records") == "3-6"
        title = quick.find("title")
        assert title is not None and title.text == f"4 /health checks answered within {HEALTH_QUIET_S * 1000:.0f} ms"
        assert all(metrics.health_latency(s.records[i]) <= HEALTH_QUIET_S for i in _positions("3-6"))

    def test_slow_checks_answered_together_share_a_tooltip(self) -> None:
        # A blocked loop: checks sent every 0.1 s during 1 s of work, all answered when it ends.
        records = [
            work("api", 7, 0.0, 1.0, index=0),
            *(answered(health(7, 0.1 * k, 1.01), 1.0 + 0.0001 * k) for k in range(1, 10)),
            answered(health(7, 1.5, 1.51), 1.502),
            answered(health(7, 2.0, 2.3), 2.2),
        ]
        records = [records[0], *(dataclasses.replace(r, index=k) for k, r in enumerate(records[1:], start=1))]
        s = scenario("cpu", records)
        svg = ET.fromstring(timeline_svg(s))
        ticks = _health_ticks(svg)
        assert sorted(ticks) == list(range(1, 12))
        paths = {path.get("data-records"): path for *_, path in ticks.values()}
        assert set(paths) == {"1-9", "10", "11"}
        assert "ticks" in _class(paths["10"])  # answered in 2 ms
        together = paths["1-9"].find("title")
        assert together is not None  # the burst starts when the work request is sent, 10 ms before its work
        assert together.text == (
            "9 /health checks (#1 to #9) · pid 7 answered together at 1.011 s, after 101 to 900 ms"
        )
        alone = paths["11"].find("title")
        assert alone is not None and alone.text == "/health #11 · pid 7 · answered after 200 ms"

    def test_ranges(self) -> None:
        assert ranges([]) == ""
        assert ranges([4]) == "4"
        assert ranges([1, 2, 3, 5, 7, 8]) == "1-3 5 7-8"
        assert _positions(ranges([0, 1, 2, 9, 11, 12])) == [0, 1, 2, 9, 11, 12]

    def test_pipeline_inner_bar(self) -> None:
        run = sample_run()
        s = _scenario(run, "uvicorn-1-sync", "generate")
        scale = _expected_scale(s)
        for g in _requests(_svg(run, "uvicorn-1-sync", "generate")):
            record = s.records[int(g.get("data-record", "-1"))]
            pipes = [r for r in g.iter("rect") if "pipe" in _class(r)]
            if record.work != "generate":
                assert not pipes
                continue
            assert record.pipeline_start_ns is not None and record.pipeline_end_ns is not None
            (pipe,) = pipes
            assert float(pipe.get("x", "nan")) == pytest.approx(scale(record.pipeline_start_ns), abs=TOLERANCE)
            assert float(pipe.get("width", "nan")) == pytest.approx(
                scale(record.pipeline_end_ns) - scale(record.pipeline_start_ns), abs=TOLERANCE
            )

    def test_titles_carry_the_numbers(self) -> None:
        run = sample_run()
        s = _scenario(run, "gunicorn-3-sync", "mixed")
        for g in _requests(_svg(run, "gunicorn-3-sync", "mixed")):
            record = s.records[int(g.get("data-record", "-1"))]
            title = g.find("title")
            assert title is not None and title.text
            text = title.text
            assert text.startswith(record.kind)
            assert f"latency {record.latency_s:.3f} s" in text
            if record.pid is not None:
                assert f"pid {record.pid}" in text
            if record.start_ns is not None and record.end_ns is not None:
                start = (record.start_ns - s.started_ns) / 1e9
                end = (record.end_ns - s.started_ns) / 1e9
                assert f"work {start:.3f} s → {end:.3f} s ({end - start:.3f} s)" in text
            if record.error:
                assert f"error {record.error}" in text and "FAILED" in text
            if record.status is not None:
                assert f"status {record.status}" in text

    def test_axis_labels(self) -> None:
        run = sample_run()
        s = _scenario(run, "uvicorn-1-sync", "sleep")
        scale = _expected_scale(s)
        svg = _svg(run, "uvicorn-1-sync", "sleep")
        labels = [t for t in svg.iter("text") if "tick-label" in _class(t)]
        # The burst spans 0.04 .. 1.08 s on the synthetic clock: 1.04 s, ticks every 0.2 s.
        assert [t.text for t in labels] == ["0.0 s", "0.2 s", "0.4 s", "0.6 s", "0.8 s", "1.0 s"]
        for k, t in enumerate(labels):
            expected = scale(s.started_ns + round(k * 0.2 * S))
            assert float(t.get("x", "nan")) == pytest.approx(expected, abs=TOLERANCE)
        (title,) = [t for t in svg.iter("text") if "axis-title" in _class(t)]
        assert title.text == "seconds from the burst's start"

    def test_empty_scenario(self) -> None:
        svg = ET.fromstring(timeline_svg(scenario("sleep", [])))
        assert not _requests(svg)
        assert any(t.text == "no requests recorded" for t in svg.iter("text"))

    def test_long_bursts_have_few_ticks(self) -> None:
        records = [*back_to_back(1, 3, 11.0), *(health(1, t, t + 0.001) for t in range(33))]
        svg = ET.fromstring(timeline_svg(scenario("timeout", records)))
        labels = [t.text for t in svg.iter("text") if "tick-label" in _class(t)]
        assert labels[:3] == ["0 s", "5 s", "10 s"]
        assert len(labels) <= 10


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.attrs: list[tuple[str, str, str | None]] = []
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend((tag, name, value) for name, value in attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


class TestPage:
    def test_well_formed_and_self_contained(self) -> None:
        page = render_html(sample_run())
        assert page.startswith("<!DOCTYPE html>")
        ET.fromstring(page)  # also well-formed XML
        assert not re.search(r"https?://", page), "no network URL of any kind"
        collector = _Collector()
        collector.feed(page)
        assert "script" not in collector.tags
        assert "link" not in collector.tags and "img" not in collector.tags
        for tag, name, value in collector.attrs:
            assert name != "src", (tag, value)
            if name == "href":
                assert value is not None and value.startswith("#"), value
        assert "@import" not in page and "url(" not in page

    def test_internal_links_resolve(self) -> None:
        root = ET.fromstring(render_html(sample_run()))
        ids = {e.get("id") for e in root.iter() if e.get("id")}
        hrefs = [a.get("href", "") for a in root.iter("a")]
        assert hrefs
        assert all(h[1:] in ids for h in hrefs)

    def test_every_string_is_escaped(self) -> None:
        page = render_html(sample_run())
        assert "<script" not in page
        assert HOSTILE not in page
        collector = _Collector()
        collector.feed(page)
        text = "".join(collector.text)
        # Readable in the page as what it was.
        assert text.count(HOSTILE) >= 5

    def test_summary_matrix(self) -> None:
        run = sample_run()
        root = ET.fromstring(render_html(run))
        cells = {
            (td.get("data-profile"), td.get("data-scenario")): td for td in root.iter("td") if td.get("data-scenario")
        }
        assert set(cells) == {
            ("uvicorn-1-sync", "sleep"),
            ("uvicorn-1-sync", "generate"),
            ("gunicorn-3-sync", "mixed"),
        }
        assert "held" in _class(cells["uvicorn-1-sync", "sleep"])
        assert "broken" in _class(cells["gunicorn-3-sync", "mixed"])
        mixed = _scenario(run, "gunicorn-3-sync", "mixed")
        figures = metrics.summary(mixed.records)
        text = "".join(cells["gunicorn-3-sync", "mixed"].itertext())
        assert f"{figures.makespan_s:.2f} s" in text
        assert f"\u00d7{figures.overlap}" in text
        assert f"p99 {figures.health_p99_ms:.0f} ms" in text
        assert "err 2" in text
        assert "\u27171" in text  # one expectation failed there

    def test_recommendation_claims_and_expectations(self) -> None:
        run = sample_run()
        root = ET.fromstring(render_html(run))
        text = " ".join("".join(root.itertext()).split())
        assert "Recommended: uvicorn-1-sync" in text
        assert "gunicorn-3-sync: an expectation failed" in text
        assert "hypercorn-1-sync: did not start" in text
        claims = next(t for t in root.iter("table") if "claims" in _class(t))
        verdicts = [td.text for td in claims.iter("td") if td.get("class", "").startswith("v-")]
        assert verdicts == ["CONFIRMED", "REFUTED"]
        tables = [t for t in root.iter("table") if "expectations" in _class(t)]
        assert len(tables) == 2  # the profile that did not start checked none
        marks = ["".join(m.itertext()) for t in tables for m in t.iter("span") if _class(m) in (["held"], ["broken"])]
        assert marks == ["\u2713 PASS" if v.passed else "\u2717 FAIL" for p in run.profiles for v in p.verdicts]
        assert "port in use" in text and "did not start" in text

    def test_verdicts_lead_the_summary(self) -> None:
        root = ET.fromstring(render_html(sample_run()))
        matrix = next(t for t in root.iter("table") if "matrix" in _class(t))
        header = ["".join(th.itertext()) for th in matrix.iter("th") if th.get("class") != "name"][:8]
        assert header == [
            "profile",
            "fit to serve",
            "as predicted",
            "liveness",
            "ready",
            "sleep",
            "generate",
            "mixed",
        ]
        for row in matrix.iter("tr"):
            if row.get("data-profile"):
                first = [cell.get("class", "") for cell in row][:4]
                assert first[0] == "name" and "fit-col" in first[1] and "predicted-col" in first[2]

    def test_fit_and_predicted_never_share_a_style(self) -> None:
        run = assessed_sample_run()
        fit = dataclasses.replace(run.profiles[0], assessment=Assessment(predicted=True, fit=True))
        run = dataclasses.replace(run, profiles=(fit, *run.profiles[1:]))
        root = ET.fromstring(render_html(run))
        matrix = next(t for t in root.iter("table") if "matrix" in _class(t))
        fit_marks = {m.get("class") for td in matrix.iter("td") if "fit-col" in _class(td) for m in td.iter("span")}
        predicted_marks = {
            m.get("class") for td in matrix.iter("td") if "predicted-col" in _class(td) for m in td.iter("span")
        }
        assert fit_marks == {"fit", "unfit"}
        assert predicted_marks == {"held", "broken"}
        # Distinct colours too: no background of one scheme appears in the other's.
        backgrounds = {
            name: set(re.findall(r"background: (#[0-9a-f]{6})", rule))
            for name, rule in re.findall(r"span\.(\w+) \{([^}]*)\}", _CSS)
        }
        fit_colours = backgrounds["fit"] | backgrounds["unfit"]
        predicted_colours = backgrounds["held"] | backgrounds["broken"]
        assert fit_colours and predicted_colours and not fit_colours & predicted_colours
        # Words and shapes as well, for a reader without colour.
        text = {"".join(td.itertext()) for td in matrix.iter("td") if "fit-col" in _class(td)}
        assert text == {"\u25cf FIT", "\u25a0 UNFIT"}

    def test_an_unfit_profile_never_looks_green(self) -> None:
        run = assessed_sample_run()
        unfit = run.profiles[0]
        assert unfit.passed and not unfit.fit  # as predicted, every expectation held, and unfit
        root = ET.fromstring(render_html(run))
        (row,) = [tr for tr in root.iter("tr") if tr.get("data-profile") == unfit.name]
        green = {"pass", "fit", "l-fast"}
        for cell in row.iter():
            if cell.get("data-scenario") is not None or "fit-col" in _class(cell):
                assert not green & set(_class(cell)), ET.tostring(cell, encoding="unicode")
        scenario_cells = [td for td in row.iter("td") if td.get("data-scenario")]
        assert scenario_cells and all(_class(td) == ["cell", "held"] for td in scenario_cells)
        assert "table.matrix td.cell.held" not in _CSS  # a held cell is plain: no colour of its own

    def test_liveness_has_its_own_marks(self) -> None:
        run = assessed_sample_run()
        live = dataclasses.replace(
            run.profiles[0],
            assessment=Assessment(predicted=True, fit=False, liveness=Liveness.BLOCKED, liveness_evidence="waits"),
        )
        root = ET.fromstring(render_html(dataclasses.replace(run, profiles=(live,))))
        (cell,) = [td for td in root.iter("td") if "l-blocked" in _class(td)]
        assert cell.text == "blocked" and cell.get("title") == "waits"

    def test_size_per_record(self) -> None:
        """Health checks are most of a long run's records: each costs a few bytes, not an element with a tooltip."""

        def page(checks: int, blocked: int) -> int:
            records = [work("api", 7, 0.0, 30.0, index=0)]
            # Quick checks, 10 ms apart; then blocked ones, answered 20 at a time.
            records += [answered(health(7, 0.01 * k, 0.012 * k), 0.01 * k + 0.001) for k in range(checks)]
            records += [
                answered(health(7, 20 + 0.01 * k, 30 + k // 20), 29.5 + k // 20 + 0.0001 * (k % 20))
                for k in range(blocked)
            ]
            s = scenario("sleep", records)
            return len(
                render_html(ProbeRun(created="x", machine={}, options={}, profiles=(result("uvicorn-1-sync", [s]),)))
            )

        base = page(0, 0)
        assert (page(2000, 0) - base) / 2000 < 35  # one subpath and a position each
        assert (page(0, 400) - base) / 400 < 60  # plus a share of a tooltip per 20
        records = sum(1 for p in sample_run().profiles for s in p.scenarios for r in s.records)
        assert len(render_html(sample_run())) < 1500 * records + 12_000

    def test_incomplete_run_is_marked(self) -> None:
        assert "INCOMPLETE" not in render_html(sample_run())
        assert "INCOMPLETE" in render_html(sample_run(complete=False))

    def test_a_run_with_nothing_in_it(self) -> None:
        page = render_html(ProbeRun(created="", machine={}, options={}, profiles=()))
        ET.fromstring(page)
        assert "No profile is fit to serve" in page

    def test_profile_without_scenarios(self) -> None:
        page = render_html(ProbeRun(created="x", machine={}, options={}, profiles=(result("uvicorn-1-sync"),)))
        ET.fromstring(page)
        assert "No expectations were checked" in page


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return (int(hex_colour[1:3], 16), int(hex_colour[3:5], 16), int(hex_colour[5:7], 16))


@pytest.mark.e2e
def test_renders_in_headless_chromium(tmp_path: Path) -> None:
    """A real browser draws the page: many colours, and every bar colour over a real area."""
    from PIL import Image

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("chromium is not installed (scripts/test installs it: apt-get install -y chromium)")
    page = tmp_path / "report.html"
    page.write_text(render_html(sample_run()), encoding="utf-8")
    shot = tmp_path / "shot.png"
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    command = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--force-color-profile=srgb",
        f"--user-data-dir={profile}",
        f"--screenshot={shot}",
        "--window-size=1400,3200",
        page.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert shot.exists(), f"no screenshot (exit {done.returncode}): {done.stderr[-2000:]}"
    with Image.open(shot) as image:
        assert image.size == (1400, 3200)
        rgb = image.convert("RGB")
        pixels = Counter(getattr(rgb, "get_flattened_data", rgb.getdata)())
    assert len(pixels) > 50, "the page looks blank"
    white = pixels.get((255, 255, 255), 0)
    assert white < 0.95 * 1400 * 3200, "the page is almost all white"
    # Solid fills come out exact; each kind covers far more than its legend swatch (22 x 14 px).
    for key, minimum in (("api", 5000), ("demo", 1000), ("generate", 2000), ("pipeline", 1000), ("health", 300)):
        assert pixels.get(_rgb(COLOURS[key]), 0) > minimum, (key, pixels.get(_rgb(COLOURS[key]), 0))
    assert pixels.get(_rgb(COLOURS["failed"]), 0) > 100
