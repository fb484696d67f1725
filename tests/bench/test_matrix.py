"""The bench's probe-run breakdown (``bench/matrix.py``): overlapping spans count once."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.matrix import _union_s, probe_parts

S = 1_000_000_000


def scenario(name: str, start_s: float, end_s: float) -> dict[str, Any]:
    return {"scenario": name, "started_ns": int(start_s * S), "finished_ns": int(end_s * S)}


def test_side_by_side_timeouts_count_once_and_the_rest_is_overhead() -> None:
    payload = {
        "profiles": [
            {
                "ready_seconds": 8.0,
                "stop_seconds": 1.0,
                "scenarios": [scenario("sleep", 10, 11), scenario("cpu", 11, 13), scenario("timeout", 100, 133)],
            },
            {
                "ready_seconds": 9.0,
                "stop_seconds": 2.0,
                # Its timeout ran beside the first one's: 100-133 and 101-135 cover 35 s, not 67.
                "scenarios": [scenario("sleep", 30, 31), scenario("timeout", 101, 135)],
            },
        ]
    }
    parts = probe_parts(payload, wall=200.0)
    assert parts["start"] == pytest.approx(17.0)
    assert parts["bursts"] == pytest.approx(4.0)
    assert parts["timeout"] == pytest.approx(35.0)
    assert parts["stop"] == pytest.approx(3.0)
    assert parts["overhead"] == pytest.approx(200.0 - 17 - 4 - 35 - 3)


spans = st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)).map(lambda t: (min(t), max(t))), max_size=30)


@given(spans)
def test_the_union_is_between_the_longest_span_and_the_sum(items: list[tuple[int, int]]) -> None:
    union = _union_s(items)
    longest = max((b - a for a, b in items), default=0) / 1e9
    total = sum(b - a for a, b in items) / 1e9
    assert longest - 1e-9 <= union <= total + 1e-9
    # Order does not matter, and a span inside another adds nothing.
    assert _union_s(list(reversed(items))) == pytest.approx(union)
    if items:
        a, b = items[0]
        assert _union_s([*items, (a, (a + b) // 2)]) == pytest.approx(union)
