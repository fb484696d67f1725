"""Plain result objects of a probe run, and their versioned JSON form.

Results are recorded once and rendered many times (terminal tables, JSON,
HTML), so everything a renderer needs is here as data, nothing as behaviour.
All times are ``time.monotonic_ns()`` values: on Linux one clock for every
process, so client send/receive times and the server's work start/end can be
compared directly.

JSON schema ``launch.probe`` version 1 (see :func:`run_to_json`)::

    {"schema": "launch.probe", "schema_version": 1, "complete": bool,
     "created": ISO-8601, "machine": {...}, "options": {...},
     "profiles": [ProfileResult...], "claims": [Claim...],
     "recommendation": Recommendation | null}
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = "launch.probe"
SCHEMA_VERSION = 1


class ResultFileError(ValueError):
    """A result file is unreadable, truncated, foreign or of a newer schema."""


class Status(enum.StrEnum):
    """How a profile's run ended."""

    OK = "ok"
    DID_NOT_START = "did_not_start"
    DIED = "died"
    """The server stopped on its own mid-run."""
    INTERRUPTED = "interrupted"


class Kind(enum.StrEnum):
    """Which door a request came through."""

    API = "api"
    DEMO = "demo"
    HEALTH = "health"


class Liveness(enum.StrEnum):
    """How /health fared while work ran, graded (see :mod:`launcher.probe.expectations`)."""

    FAST = "fast"
    """Answered promptly throughout: the event loop stayed free."""
    DEGRADED = "degraded"
    """Answered, but late: CPU threads of the same process competed with the event loop for the GIL."""
    BLOCKED = "blocked"
    """Waited for the work to end: the event loop itself ran the work."""
    UNKNOWN = "unknown"
    """Not polled."""


class ClaimVerdict(enum.StrEnum):
    """How a claim of the write-up fared."""

    CONFIRMED = "CONFIRMED"
    REFUTED = "REFUTED"
    DEPENDS = "DEPENDS"
    """True under a condition the evidence names and measures (the mode, the machine's cores...)."""
    UNTESTED = "UNTESTED"


@dataclass(frozen=True, kw_only=True)
class QueueStatus:
    """One queue-status message a waiting demo client received, with when it arrived."""

    at_ns: int
    rank: int | None = None
    """Position in the queue (0: next)."""
    queue_size: int | None = None
    eta_s: float | None = None


@dataclass(frozen=True, kw_only=True)
class RequestRecord:
    """One request of a burst as the client saw it, with the server's attribution."""

    kind: str
    """``api``, ``demo`` or ``health``."""
    work: str | None
    """``sleep``, ``cpu``, ``generate``; None for health."""
    index: int
    sent_ns: int
    received_ns: int
    status: int | None = None
    """HTTP status (demo clicks: 200 when the event completed)."""
    error: str | None = None
    """Error class: ``timeout``, ``disconnected``, ``refused``, ``http_5xx``, ``queue_split``, ..."""
    detail: str | None = None
    pid: int | None = None
    thread: int | None = None
    start_ns: int | None = None
    end_ns: int | None = None
    in_flight: int | None = None
    pipeline_start_ns: int | None = None
    pipeline_end_ns: int | None = None
    steps: dict[str, int] = field(default_factory=dict)
    """Demo clicks: the pid that answered each HTTP step of the click (``join``, ``stream``),
    read from the ``x-launch-pid`` header; the result's pid is :attr:`pid`."""
    queue: tuple[QueueStatus, ...] = ()
    """Demo clicks: the queue-status messages (position, ETA) the waiting client received."""

    @property
    def ok(self) -> bool:
        """Completed with a 2xx answer."""
        return self.error is None and self.status is not None and 200 <= self.status < 300

    @property
    def latency_s(self) -> float:
        """Client-side latency in seconds."""
        return (self.received_ns - self.sent_ns) / 1e9

    @property
    def has_work_interval(self) -> bool:
        """True when the server reported when the work ran."""
        return self.start_ns is not None and self.end_ns is not None and self.pid is not None


@dataclass(frozen=True, kw_only=True)
class LogEvent:
    """A notable line of the server's log during a scenario."""

    kind: str
    """``worker_timeout``, ``worker_killed``, ``worker_booted``, ``worker_died``, ``error``."""
    pid: int | None
    line: str


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """One expectation checked against the evidence."""

    expectation: str
    observed: str
    passed: bool
    why: str
    scenario: str = ""


@dataclass(frozen=True, kw_only=True)
class ScenarioResult:
    """One burst: what was sent, what came back, what the log said."""

    scenario: str
    n: int
    seconds: float
    started_ns: int
    finished_ns: int
    records: tuple[RequestRecord, ...]
    log_events: tuple[LogEvent, ...] = ()
    verdicts: tuple[Verdict, ...] = ()
    note: str = ""
    repeat: int = 0
    """Which repetition of the burst this is (0-based; ``launch probe --repeat R``)."""
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    """CPU time (user + system) each worker pid used during the burst, read
    from /proc before and after it. A physical measure of the work done,
    immune to how fast the CPU loop happened to run this time."""

    @property
    def cpu_by_pid(self) -> dict[int, float]:
        """:attr:`cpu_seconds` with integer pids."""
        return {int(pid): seconds for pid, seconds in self.cpu_seconds.items()}

    @property
    def unit_s(self) -> float:
        """CPU seconds of one request's work: measured (CPU time / requests) when known, else the nominal S."""
        done = len([r for r in self.records if r.kind in ("api", "demo") and r.ok])
        if self.cpu_seconds and done:
            return sum(self.cpu_seconds.values()) / done
        return self.seconds


@dataclass(frozen=True, kw_only=True)
class Figure:
    """A figure measured once per repeat: its median and its spread (max - min)."""

    median: float
    low: float
    high: float
    samples: int

    @property
    def spread(self) -> float:
        """Max - min over the repeats (0 with one sample)."""
        return self.high - self.low


@dataclass(frozen=True, kw_only=True)
class Assessment:
    """A profile's two verdicts, never confused.

    *As predicted* is the tool's own correctness: every expectation of the
    model held. *Fit to serve* is the user's question: no lost request or
    click, no demo split over processes, /health fast, model access
    serialized per worker. A profile can be exactly as predicted and unfit.
    """

    predicted: bool
    fit: bool
    unfit: tuple[str, ...] = ()
    """Why it is not fit to serve, one reason per entry (empty when fit)."""
    hazards: tuple[str, ...] = ()
    """Structural hazards: evidence even in a run where nothing failed (e.g. a demo split over processes)."""
    liveness: str = Liveness.UNKNOWN
    liveness_evidence: str = ""
    makespan: Figure | None = None
    """Total makespan of the bursts (timeout scenario excluded), per repeat."""
    demo_pids: tuple[int, ...] = ()
    """Every pid that answered a Gradio queue request (join, stream) or ran a click."""
    processes: int = 1
    """Server processes: workers, plus a supervisor for multi-process backends."""


@dataclass(frozen=True, kw_only=True)
class ProfileResult:
    """Everything measured for one profile."""

    profile: dict[str, Any]
    source: str | None
    status: str
    """``ok``, ``did_not_start``, ``interrupted``."""
    ready_seconds: float | None = None
    pids: tuple[int, ...] = ()
    launcher_pid: int | None = None
    """The ``launch --profile`` process (a worker itself when the backend serves in process)."""
    error: str | None = None
    log_tail: str = ""
    scenarios: tuple[ScenarioResult, ...] = ()
    stop_seconds: float | None = None
    stop_forced: bool = False
    assessment: Assessment | None = None
    """The two verdicts and the figures the recommendation compares; judged once, by the probe."""

    @property
    def name(self) -> str:
        """The profile's name (``?`` in a file that lacks it)."""
        return str(self.profile.get("name", "?"))

    @property
    def verdicts(self) -> list[Verdict]:
        """Every verdict of every scenario."""
        return [v for s in self.scenarios for v in s.verdicts]

    @property
    def passed(self) -> bool:
        """Started, and every expectation held (the *as predicted* verdict)."""
        return self.status == Status.OK and all(v.passed for v in self.verdicts)

    @property
    def fit(self) -> bool:
        """Judged fit to serve (False when not judged)."""
        return self.assessment is not None and self.assessment.fit


@dataclass(frozen=True, kw_only=True)
class Claim:
    """A claim of the original write-up, judged on this run's evidence."""

    number: int
    text: str
    verdict: str
    """``CONFIRMED``, ``REFUTED``, ``DEPENDS`` or ``UNTESTED``."""
    evidence: str
    summary: str = ""
    """The evidence in one short line, for the default terminal output."""


@dataclass(frozen=True, kw_only=True)
class Recommendation:
    """The profile to deploy, and why the others lost."""

    profile: dict[str, Any]
    source: str | None
    ready_seconds: float | None
    why: str
    rejected: dict[str, str] = field(default_factory=dict)
    tied: tuple[str, ...] = ()
    """Profiles within the measured spread of the winner (itself included), when there was a tie."""
    rule: str = ""
    """How the winner was chosen among the candidates, in words."""


@dataclass(frozen=True, kw_only=True)
class ProbeRun:
    """A whole probe run."""

    created: str
    machine: dict[str, Any]
    options: dict[str, Any]
    profiles: tuple[ProfileResult, ...]
    claims: tuple[Claim, ...] = ()
    recommendation: Recommendation | None = None
    complete: bool = True

    @property
    def passed(self) -> bool:
        """Every profile started and met every expectation."""
        return all(p.passed for p in self.profiles)


def run_to_json(run: ProbeRun) -> dict[str, Any]:
    """The run as a JSON-ready dict (schema ``launch.probe``, current version)."""
    body = dataclasses.asdict(run)
    return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, **body}


def dump_run(run: ProbeRun) -> str:
    """The run as JSON text."""
    return json.dumps(run_to_json(run), indent=1)


_HINTS: dict[type[Any], dict[str, Any]] = {}


def _hints(cls: type[Any]) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _conforms(value: Any, hint: Any) -> bool:
    """Whether a value read from JSON fits a field's annotation (shallow for free-form dicts)."""
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        return any(_conforms(value, arg) for arg in args)
    if origin is tuple:
        return isinstance(value, tuple) and all(_conforms(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(
            _conforms(k, args[0]) and _conforms(v, args[1]) for k, v in value.items()
        )
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return isinstance(value, hint)
    return True


def _type_name(hint: Any) -> str:
    if isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "").replace("launcher.probe.model.", "")


def _build(cls: type[Any], data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ResultFileError(f"{where}: expected an object, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    try:
        built = cls(**{k: v for k, v in data.items() if k in names})
    except TypeError as exc:
        raise ResultFileError(f"{where}: {exc}") from None
    for name, hint in _hints(cls).items():
        value = getattr(built, name)
        if not _conforms(value, hint):
            shown = json.dumps(value, default=str)
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            raise ResultFileError(f"{where}: {name} = {shown}: expected {_type_name(hint)}")
    return built


def _object(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data[key]
    if not isinstance(value, dict):
        raise ResultFileError(f"{key}: expected an object, got {type(value).__name__}")
    return dict(value)


def run_from_json(data: Any) -> ProbeRun:
    """Rebuild a run from :func:`run_to_json` output; :class:`ResultFileError` if it is not one."""
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ResultFileError('not a launch probe result (missing "schema": "launch.probe")')
    version = data.get("schema_version")
    if not isinstance(version, int):
        raise ResultFileError("schema_version is missing or not an integer")
    if version > SCHEMA_VERSION:
        raise ResultFileError(
            f"schema_version {version} is newer than this launch understands ({SCHEMA_VERSION}); upgrade launch"
        )
    try:
        profiles = []
        for i, p in enumerate(data["profiles"]):
            scenarios = []
            for j, s in enumerate(p.get("scenarios", [])):
                where = f"profiles[{i}].scenarios[{j}]"
                records = tuple(_build(RequestRecord, r, f"{where}.records") for r in s.get("records", []))
                events = tuple(_build(LogEvent, e, f"{where}.log_events") for e in s.get("log_events", []))
                verdicts = tuple(_build(Verdict, v, f"{where}.verdicts") for v in s.get("verdicts", []))
                scenarios.append(
                    _build(
                        ScenarioResult,
                        {**s, "records": records, "log_events": events, "verdicts": verdicts},
                        where,
                    )
                )
            profiles.append(
                _build(
                    ProfileResult,
                    {**p, "scenarios": tuple(scenarios), "pids": tuple(p.get("pids", ()))},
                    f"profiles[{i}]",
                )
            )
        claims = tuple(_build(Claim, c, "claims") for c in data.get("claims", []))
        rec = data.get("recommendation")
        recommendation = _build(Recommendation, rec, "recommendation") if rec is not None else None
        return ProbeRun(
            created=str(data["created"]),
            machine=_object(data, "machine"),
            options=_object(data, "options"),
            profiles=tuple(profiles),
            claims=claims,
            recommendation=recommendation,
            complete=bool(data.get("complete", True)),
        )
    except (KeyError, AttributeError, TypeError) as exc:
        raise ResultFileError(f"malformed launch probe result: {type(exc).__name__}: {exc}") from None


def read_run(path: Path) -> ProbeRun:
    """Read a result file; :class:`ResultFileError` with one line when it cannot be read or is not one."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ResultFileError("not a launch probe result (not UTF-8 text)") from None
    except OSError as exc:
        raise ResultFileError(f"cannot read: {exc.strerror or type(exc).__name__}") from None
    return load_run(text)


def load_run(text: str) -> ProbeRun:
    """Parse JSON text into a run; :class:`ResultFileError` with one line when it is not one."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultFileError(f"not valid JSON (truncated?): {exc}") from None
    except RecursionError:
        raise ResultFileError("not a launch probe result (nested too deeply)") from None
    return run_from_json(data)
