"""The load check's rules, without servers: when a hold carries the rate, and which fit profile is recommended."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from launcher.capacity.load import (
    ACHIEVED_SHARE,
    HOLD_MIN_REQUESTS,
    HOLD_MIN_SECONDS,
    LoadGoal,
    carried,
    goal_from,
)
from launcher.capacity.model import StepResult
from launcher.errors import ConfigError
from launcher.probe.model import Kind, LoadCheck, RequestRecord
from launcher.probe.recommend import recommend_for_load
from launcher.probe.scenario_file import Target

GOAL = LoadGoal(rate=4.5, route="/test2?seconds=0.25", p99_s=2.0)


def check(
    name: str, *, carried: bool, processes: int, backend: str = "uvicorn", knee: float | None = None
) -> LoadCheck:
    workers = max(1, processes - 1) if name.startswith("split") else processes
    return LoadCheck(
        profile=name,
        backend=backend,
        processes=processes,
        workers=workers,
        carried=carried,
        p99_s=0.8 if carried else 9.8,
        knee=knee,
        why="p99 0.80 s" if carried else "p99 9.80 s: p99 over 2 s",
    )


def step(*, p99: float | None = 0.8, achieved: float = 4.5, errors: int = 0, sent: int = 90) -> StepResult:
    return StepResult(
        rate=4.5,
        seconds=20.0,
        scheduled=90,
        sent=sent,
        ok=sent - errors,
        errors=errors,
        error_kinds={"http_500": errors} if errors else {},
        achieved_rate=achieved,
        p50_s=None if p99 is None else 0.3,
        p99_s=p99,
        passed=True,
    )


def click(ok: bool = True) -> RequestRecord:
    return RequestRecord(
        kind=Kind.DEMO, work="sleep", index=0, sent_ns=0, received_ns=1, status=200 if ok else None,
        error=None if ok else "queue_split",
    )  # fmt: skip


class TestCarried:
    def test_a_hold_within_every_bound_carries_the_rate(self) -> None:
        ok, why = carried(step(), [click(), click()], GOAL)
        assert ok and why == "p50 0.30 s, p99 0.80 s, 4.5/s answered of 4.5/s, 2 of 2 demo clicks done"

    @pytest.mark.parametrize(
        ("hold", "clicks", "reason"),
        [
            (step(errors=1), [click()], "1 of 90 requests failed (http_500 1)"),
            (step(p99=2.5), [click()], "p99 over 2 s"),
            (step(p99=None), [click()], "no answer"),
            (step(sent=60), [click()], "stopped early"),
            (step(achieved=4.5 * ACHIEVED_SHARE - 0.01), [click()], "a queue grows"),
            (step(), [click(), click(ok=False)], "1 of 2 demo clicks failed (queue_split)"),
        ],
    )
    def test_each_bound_alone_fails_the_hold(self, hold: StepResult, clicks: list[RequestRecord], reason: str) -> None:
        ok, why = carried(hold, clicks, GOAL)
        assert not ok and reason in why

    def test_the_hold_is_at_least_20_s_and_50_requests(self) -> None:
        assert LoadGoal(rate=10).hold_seconds == HOLD_MIN_SECONDS
        assert LoadGoal(rate=1).hold_seconds == HOLD_MIN_REQUESTS / 1

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"rate": 0}, "--target-rate"),
            ({"rate": 1, "p99_s": 0}, "--p99"),
            ({"rate": 1, "route": "/admin"}, "--route '/admin': expected one of"),
            ({"rate": 1, "route": "admin", "app": True}, "--route 'admin': expected a path of the app"),
        ],
    )
    def test_a_goal_it_cannot_hold_is_a_config_error(self, kwargs: dict[str, object], message: str) -> None:
        with pytest.raises(ConfigError, match=message):
            LoadGoal(**kwargs)  # type: ignore[arg-type]

    def test_a_users_app_takes_any_of_its_paths(self) -> None:
        """Not the reference service's routes: which paths the app serves is checked against the app itself."""
        assert LoadGoal(rate=1, route="/admin?x=1", app=True).route == "/admin?x=1"


class TestDecision:
    def test_the_simplest_profile_that_carries_the_rate_wins(self) -> None:
        checks = [
            check("split-gunicorn-3-offload", carried=True, processes=4, backend="gunicorn", knee=9.0),
            check("uvicorn-1-offload", carried=False, processes=1, knee=4.0),
            check("split-uvicorn-3-offload", carried=True, processes=4, knee=9.5),
        ]
        decision = recommend_for_load(checks, rate=4.5, route="/test2", p99_s=2.0, cores=2)
        # Both splits carry it with 4 processes: the backend order decides (uvicorn first), not the higher knee.
        assert decision.chosen == "split-uvicorn-3-offload"
        assert "the simplest fit profile that carries it (of 2 that do)" in decision.why
        assert decision.checks == tuple(checks)

    def test_a_single_process_that_carries_it_beats_a_split(self) -> None:
        checks = [
            check("split-gunicorn-3-offload", carried=True, processes=4, backend="gunicorn", knee=9.0),
            check("uvicorn-1-offload", carried=True, processes=1, knee=4.0),
        ]
        assert recommend_for_load(checks, rate=1, route="/test2", p99_s=2.0, cores=2).chosen == "uvicorn-1-offload"

    def test_none_carrying_it_names_the_closest_knee_and_a_fit_topology_that_scales(self) -> None:
        checks = [
            check("uvicorn-1-offload", carried=False, processes=1, knee=4.0),
            check("hypercorn-1-offload", carried=False, processes=1, backend="hypercorn", knee=3.0),
        ]
        decision = recommend_for_load(checks, rate=10, route="/test2", p99_s=2.0, cores=2)
        assert decision.chosen is None
        assert "closest: uvicorn-1-offload (knee 4/s over 1 serving process(es), 4/s each)" in decision.why
        assert "about 3 serving processes: a split profile with workers = 3" in decision.why
        assert "more than this machine's 2 cores" in decision.why

    def test_none_fit_or_no_knee_at_all_is_said_so(self) -> None:
        none_fit = recommend_for_load([], rate=10, route="/test2", p99_s=2.0, cores=2)
        assert none_fit.chosen is None and "no profile is fit to serve" in none_fit.why
        no_knee = recommend_for_load(
            [check("uvicorn-1-offload", carried=False, processes=1)], rate=10, route="/test2", p99_s=2.0, cores=2
        )
        assert no_knee.chosen is None and "none met the p99 target at any rate tried" in no_knee.why

    @given(
        st.lists(
            st.tuples(st.booleans(), st.integers(1, 5), st.sampled_from(["uvicorn", "gunicorn", "granian"])),
            min_size=1,
            max_size=6,
        ),
        st.randoms(),
    )
    def test_the_decision_is_a_carrying_profile_with_the_fewest_processes_whatever_the_order(
        self, spec: list[tuple[bool, int, str]], shuffler: object
    ) -> None:
        checks = [
            check(f"p{i}", carried=ok, processes=n, backend=b, knee=float(n)) for i, (ok, n, b) in enumerate(spec)
        ]
        decision = recommend_for_load(checks, rate=4.5, route="/test2", p99_s=2.0, cores=2)
        shuffled = list(checks)
        shuffler.shuffle(shuffled)  # type: ignore[attr-defined]
        again = recommend_for_load(shuffled, rate=4.5, route="/test2", p99_s=2.0, cores=2)
        assert again.chosen == decision.chosen
        carrying = [c for c in checks if c.carried]
        if not carrying:
            assert decision.chosen is None
        else:
            chosen = next(c for c in checks if c.profile == decision.chosen)
            assert chosen.carried and chosen.processes == min(c.processes for c in carrying)


class TestGoalFrom:
    """The load from the command line, each key falling back on the scenario file's [target]."""

    FILE = Target(rate="5/s", route="/search?q=1", p99="500ms")

    def test_none_without_a_rate(self) -> None:
        assert goal_from(None, None, None, app=False) is None
        with pytest.raises(ConfigError, match="go with --target-rate"):
            goal_from(None, "/test1", None, app=False)

    def test_the_files_target_alone(self) -> None:
        goal = goal_from(None, None, None, app=True, file_target=self.FILE, file_label="s.toml")
        assert goal == LoadGoal(rate=5.0, route="/search?q=1", p99_s=0.5, app=True)

    def test_the_command_line_wins_key_by_key(self) -> None:
        goal = goal_from("300/min", None, "2s", app=True, file_target=self.FILE, file_label="s.toml")
        assert goal == LoadGoal(rate=5.0, route="/search?q=1", p99_s=2.0, app=True)

    def test_an_error_names_where_the_value_came_from(self) -> None:
        bad = Target(rate="5/day", route="/a")
        with pytest.raises(ConfigError, match=r"^s\.toml \[target\]: unreadable rate '5/day'"):
            goal_from(None, None, None, app=True, file_target=bad, file_label="s.toml")
        with pytest.raises(ConfigError, match=r"^unreadable rate '5/week'"):
            goal_from("5/week", None, None, app=True, file_target=self.FILE, file_label="s.toml")

    def test_an_app_needs_a_route(self) -> None:
        with pytest.raises(ConfigError, match="needs --route PATH"):
            goal_from("5/s", None, None, app=True)
