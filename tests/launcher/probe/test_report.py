"""The terminal report's cells: figures from BurstSummary, no figure shown as one."""

from __future__ import annotations

from launcher.probe.html import scenario_html
from launcher.probe.report import scenario_cell
from tests.launcher.probe.records import back_to_back, health, passed, result, scenario


def test_a_cell_shows_makespan_overlap_health_p99_and_errors() -> None:
    burst = scenario("sleep", [*back_to_back(101, 2, 1.0), health(101, 0.5, 0.52)], verdicts=[passed()])
    assert scenario_cell([burst]).plain == "2.01/1/20/0"


def test_no_answered_health_check_is_no_figure_not_zero() -> None:
    burst = scenario("sleep", [*back_to_back(101, 2, 1.0), health(None, 0.5, 0.6, error="timeout")])
    assert scenario_cell([burst]).plain == "2.01/1/-/0"
    page = scenario_html(result("uvicorn-1-sync", [burst]), burst, "p0s0")
    assert "/health p99 - over 1 checks" in page
