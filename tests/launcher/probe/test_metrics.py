"""Figures derived from synthetic request records."""

from __future__ import annotations

import pytest

from launcher.probe import metrics
from launcher.probe.metrics import OVERLAP_EPSILON_NS, max_overlap
from launcher.probe.model import Kind
from tests.launcher.probe.records import back_to_back, health, ns, spread, together, work

S = 1_000_000_000


class TestMaxOverlap:
    def test_empty(self) -> None:
        assert max_overlap([]) == 0

    def test_single(self) -> None:
        assert max_overlap([(0, S)]) == 1

    def test_touching_intervals_do_not_overlap(self) -> None:
        assert max_overlap([(0, S), (S, 2 * S), (2 * S, 3 * S)]) == 1

    def test_within_epsilon_does_not_overlap(self) -> None:
        # The next one starts just before the previous one ends, within the epsilon.
        assert max_overlap([(0, S), (S - OVERLAP_EPSILON_NS + 1, 2 * S)]) == 1
        assert max_overlap([(0, S), (S - OVERLAP_EPSILON_NS, 2 * S)]) == 1

    def test_beyond_epsilon_overlaps(self) -> None:
        assert max_overlap([(0, S), (S - OVERLAP_EPSILON_NS - 1, 2 * S)]) == 2
        assert max_overlap([(0, S), (S - 2 * OVERLAP_EPSILON_NS, 2 * S)]) == 2

    def test_nested(self) -> None:
        assert max_overlap([(0, 10 * S), (2 * S, 3 * S)]) == 2
        assert max_overlap([(0, 10 * S), (1 * S, 9 * S), (2 * S, 8 * S)]) == 3

    def test_disjoint(self) -> None:
        assert max_overlap([(0, S), (5 * S, 6 * S), (10 * S, 11 * S)]) == 1

    def test_identical(self) -> None:
        assert max_overlap([(0, S)] * 5) == 5

    def test_many(self) -> None:
        # 40 at once, then 40 more back to back after them.
        first = [(0, S)] * 40
        after = [(S + i * S, S + (i + 1) * S) for i in range(40)]
        assert max_overlap(first + after) == 40

    def test_staggered(self) -> None:
        # Each starts half-way through the previous one: two at a time.
        assert max_overlap([(i * S // 2, i * S // 2 + S) for i in range(10)]) == 2

    def test_order_does_not_matter(self) -> None:
        intervals = [(3 * S, 4 * S), (0, 10 * S), (S, 2 * S), (S, 5 * S)]
        assert max_overlap(intervals) == max_overlap(list(reversed(intervals))) == 3

    def test_interval_shorter_than_epsilon_counts(self) -> None:
        assert max_overlap([(0, OVERLAP_EPSILON_NS // 2)]) == 1
        assert max_overlap([(5 * S, 5 * S)]) == 1
        # Nested inside a long one: two at once.
        assert max_overlap([(0, 10 * S), (5 * S, 5 * S + OVERLAP_EPSILON_NS // 2)]) == 2

    def test_short_interval_touching_does_not_overlap(self) -> None:
        assert max_overlap([(0, S), (S, S + 1000)]) == 1


class TestGrouping:
    def test_work_records_skips_health_and_unattributed(self) -> None:
        records = [
            work("api", 1, 0, 1),
            work("demo", 1, 1, 2),
            work("api", None, None, None, sent_s=0, received_s=1, error="timeout"),
            health(1, 0.1, 0.2),
        ]
        assert [r.kind for r in metrics.work_records(records)] == ["api", "demo"]
        assert [r.kind for r in metrics.work_records(records, kinds=(Kind.DEMO,))] == ["demo"]

    def test_counts_and_overlap_by_pid(self) -> None:
        records = back_to_back(101, 3, 1.0) + together(102, 2, 1.0) + [health(103, 0.1, 0.2)]
        assert metrics.counts_by_pid(records) == {101: 3, 102: 2}
        assert metrics.overlap_by_pid(records) == {101: 1, 102: 2}

    def test_overlap_by_pid_pipeline(self) -> None:
        # Handlers overlap, but their pipeline calls ran one after another.
        records = [
            work("api", 7, 0, 2, pipeline=(0.5, 1.0), what="generate"),
            work("api", 7, 0, 2, pipeline=(1.0, 1.5), what="generate"),
        ]
        assert metrics.overlap_by_pid(records) == {7: 2}
        assert metrics.overlap_by_pid(records, pipeline=True) == {7: 1}

    def test_interval_pipeline_falls_back_to_work(self) -> None:
        record = work("api", 7, 0, 2)
        assert metrics.interval(record, pipeline=True) == (ns(0), ns(2))


class TestDurations:
    def test_makespan_from_first_send_to_last_answer(self) -> None:
        records = [
            work("api", 1, 0.5, 1.5, sent_s=0.0, received_s=1.6),
            work("demo", 2, 1.0, 3.0, sent_s=0.2, received_s=3.5),
            work("api", None, None, None, sent_s=0.1, received_s=4.0, error="timeout"),
            health(1, -1.0, 10.0),  # health checks are not work
        ]
        assert metrics.makespan_s(records) == pytest.approx(4.0)

    def test_span_from_first_start_to_last_end(self) -> None:
        assert metrics.span_s(spread([3, 2, 1], 1.0)) == pytest.approx(3.0)

    def test_empty(self) -> None:
        assert metrics.makespan_s([]) == 0.0
        assert metrics.span_s([]) == 0.0
        assert metrics.span_s([health(1, 0, 1)]) == 0.0


class TestPercentile:
    def test_nearest_rank(self) -> None:
        values = [float(i) for i in range(1, 101)]
        assert metrics.percentile(values, 99) == 99.0
        assert metrics.percentile(values, 50) == 50.0
        assert metrics.percentile(values, 100) == 100.0
        assert metrics.percentile(values, 0) == 1.0

    def test_small_samples_take_the_max(self) -> None:
        assert metrics.percentile([0.01, 0.5, 0.02], 99) == 0.5
        assert metrics.percentile([3.0], 50) == 3.0

    def test_above_100_is_the_max(self) -> None:
        assert metrics.percentile([1.0, 2.0], 150) == 2.0

    def test_empty_is_none_not_zero(self) -> None:
        assert metrics.percentile([], 99) is None


class TestHealthAndErrors:
    def test_health_latencies_only_answered(self) -> None:
        records = [health(1, 0, 0.05), health(1, 1, 1.2), health(1, 2, 3, error="timeout"), work("api", 1, 0, 1)]
        assert metrics.health_latencies(records) == pytest.approx([0.05, 0.2])

    def test_errors_by_class(self) -> None:
        records = [
            work("api", None, None, None, error="timeout"),
            work("api", None, None, None, error="timeout"),
            work("demo", None, None, None, error="queue_split"),
            work("api", 1, 0, 1, status=503),
            work("api", 1, 0, 1),
            health(1, 0, 1, error="refused"),
        ]
        assert metrics.errors_by_class(records) == {"timeout": 2, "queue_split": 1, "http_503": 1}
        assert metrics.errors_by_class(records, kinds=(Kind.HEALTH,)) == {"refused": 1}

    def test_summary(self) -> None:
        records = [*spread([2, 1], 1.0), health(101, 0.5, 1.0), health(102, 0.5, 0.52)]
        figures = metrics.summary(records)
        assert figures.overlap == 2
        assert figures.overlap_by_pid == {101: 1, 102: 1}
        assert figures.count_by_pid == {101: 2, 102: 1}
        assert figures.health_checks == 2
        assert figures.health_p99_ms == pytest.approx(500.0)
        assert figures.health_max_ms == pytest.approx(500.0)
        assert figures.errors == {}
        assert figures.error_count == 0

    def test_summary_empty(self) -> None:
        figures = metrics.summary([])
        assert figures.makespan_s == 0.0
        assert figures.overlap == 0
        assert figures.health_checks == 0
        # No check answered: no figure, rather than a 0 ms that reads as fast.
        assert figures.health_p99_ms is None
        assert figures.health_max_ms is None

    def test_summary_counts_errors(self) -> None:
        records = [work("api", None, None, None, error="timeout"), work("api", 1, 0, 1, status=503)]
        assert metrics.summary(records).errors == {"timeout": 1, "http_503": 1}
        assert metrics.summary(records).error_count == 2
