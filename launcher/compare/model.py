"""What a comparison of two runs is made of: typed changes, figures judged by the one noise rule, the exit code.

Pure data and pure functions: nothing here reads a file or prints.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from launcher.errors import ConfigError, ExitCode
from launcher.probe.metrics import NOISE_RULE, noise_slack, within_noise
from launcher.probe.model import Figure

SCHEMA = "launch.compare"
SCHEMA_VERSION = 1


class NotComparableError(ConfigError):
    """The two files cannot be compared: different kinds, schemas, options or machines (one line; exit 2)."""

    exit_code = ExitCode.USAGE


class ResultKind(enum.StrEnum):
    """Which command wrote a result file."""

    PROBE = "probe"
    """``launch probe``: the reference service (schema ``launch.probe``)."""
    APP = "app probe"
    """``launch probe --app``: the user's own service (schema ``launch.appprobe``, or none before it)."""
    CAPACITY = "capacity"
    """``launch capacity`` (schema ``launch.capacity``)."""

    @property
    def command(self) -> str:
        """The command that writes this kind of result."""
        return {"probe": "launch probe", "app probe": "launch probe --app", "capacity": "launch capacity"}[self.value]


class Direction(enum.StrEnum):
    """Which way a change went."""

    REGRESSION = "regression"
    IMPROVEMENT = "improvement"
    CHANGED = "changed"
    """Neither better nor worse in itself (e.g. a claim that one run did not test); fails only ``--fail-on any``."""


class Level(enum.StrEnum):
    """What changed: a verdict (a class, a yes/no) or a measured figure."""

    VERDICT = "verdict"
    FIGURE = "figure"


class FailOn(enum.StrEnum):
    """What makes ``launch compare`` exit 1: each level includes the ones before it."""

    VERDICT = "verdict"
    """A verdict regressed."""
    FIGURE = "figure"
    """A verdict or a figure regressed (a figure: outside the noise)."""
    ANY = "any"
    """Anything changed, improvements included (outside the noise): the baseline must be renewed."""


@dataclass(frozen=True, kw_only=True)
class Change:
    """One verdict that differs between the two runs."""

    direction: Direction
    profile: str
    """The profile it belongs to; empty for what belongs to the run (a claim, the recommendation)."""
    subject: str
    """What changed: ``fit``, ``liveness``, ``route lookup-threaded``, ``claim 4``, ``recommendation``, ``knee``..."""
    base: str
    new: str
    why: str = ""
    """The new run's evidence, when it gives one."""


@dataclass(frozen=True, kw_only=True)
class FigureChange:
    """One figure of both runs, judged by the noise rule."""

    profile: str
    subject: str
    """``total makespan``, ``sleep makespan``, ``route quote makespan``, ``knee``..."""
    unit: str
    base: Figure
    new: Figure
    higher_is_better: bool = False
    slack: float = 0.0
    """How far the medians may differ within noise (:func:`launcher.probe.metrics.noise_slack`)."""
    direction: Direction | None = None
    """None: the same within noise."""


def judge_figure(
    profile: str, subject: str, unit: str, base: Figure, new: Figure, *, higher_is_better: bool = False
) -> FigureChange:
    """``base`` against ``new`` under the one noise rule: a direction only when outside the noise.

    A figure in seconds (``unit="s"``) is a duration: its noise is never below the rule's floor.
    """
    direction: Direction | None = None
    duration = unit == "s"
    if not within_noise(base, new, duration=duration):
        worse = new.median < base.median if higher_is_better else new.median > base.median
        direction = Direction.REGRESSION if worse else Direction.IMPROVEMENT
    return FigureChange(
        profile=profile,
        subject=subject,
        unit=unit,
        base=base,
        new=new,
        higher_is_better=higher_is_better,
        slack=noise_slack(base, new, duration=duration),
        direction=direction,
    )


@dataclass(frozen=True, kw_only=True)
class Comparison:
    """Two runs compared: verdict changes first, then figures, then what only one of them has."""

    kind: ResultKind
    base: str
    new: str
    changes: tuple[Change, ...] = ()
    figures: tuple[FigureChange, ...] = ()
    """Every figure both runs measured, changed or not."""
    only_in_base: tuple[str, ...] = ()
    only_in_new: tuple[str, ...] = ()
    profiles: tuple[str, ...] = ()
    """The profiles both runs hold, in the base run's order."""
    notes: tuple[str, ...] = ()
    """What the reader should know: a different machine (allowed), other versions, an old file without a header."""
    different_machine: bool = False
    noise_rule: str = NOISE_RULE
    figure_rules: dict[str, str] = field(default_factory=dict)
    """How a kind of figure gets its spread, where that is not the repeats' (the knee: its bracket)."""

    @property
    def figure_changes(self) -> tuple[FigureChange, ...]:
        """The figures outside the noise."""
        return tuple(f for f in self.figures if f.direction is not None)

    @property
    def unchanged_profiles(self) -> tuple[str, ...]:
        """Common profiles with no verdict changed and every figure the same within noise."""
        touched = {c.profile for c in self.changes} | {f.profile for f in self.figure_changes}
        return tuple(p for p in self.profiles if p not in touched)

    def failing(self, fail_on: FailOn) -> list[Change | FigureChange]:
        """What makes the comparison fail at ``fail_on``, verdicts first."""
        if fail_on == FailOn.ANY:
            return [*self.changes, *self.figure_changes]
        found: list[Change | FigureChange] = [c for c in self.changes if c.direction == Direction.REGRESSION]
        if fail_on == FailOn.FIGURE:
            found += [f for f in self.figure_changes if f.direction == Direction.REGRESSION]
        return found

    def exit_code(self, fail_on: FailOn) -> int:
        """0: nothing fails at ``fail_on``; 1 (:attr:`ExitCode.EXPECTATION_FAILED`): something does."""
        return int(ExitCode.EXPECTATION_FAILED) if self.failing(fail_on) else int(ExitCode.OK)
