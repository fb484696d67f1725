"""Plain result objects of a probe run, and their versioned JSON form.

Results are recorded once and rendered many times (terminal tables, JSON,
HTML), so everything a renderer needs is here as data, nothing as behaviour.
All times are ``time.monotonic_ns()`` values: on Linux one clock for every
process, so client send/receive times and the server's work start/end can be
compared directly.

JSON schema ``launch.probe`` version 4 (see :func:`run_to_json`)::

    {"schema": "launch.probe", "schema_version": 4, "complete": bool,
     "created": ISO-8601, "machine": {...}, "options": {...},
     "conformance": [Conformance...],
     "profiles": [ProfileResult...], "claims": [Claim...],
     "recommendation": Recommendation | null,
     "load": LoadDecision | null}

A profile object (``profiles[i].profile``, ``recommendation.profile``) holds
exactly the fields of :class:`profiles.Profile` and is read back as one,
validated like a profiles file's; ``status``, ``kind``, ``liveness`` and
``verdict`` are the closed sets of the enums below. Version 1 (profile objects
free-form) is read through :func:`_from_v1`, version 2 (no server conformance
check) through :func:`_from_v2`, version 3 (no load check) through
:func:`_from_v3`; other versions are refused.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import pydantic
from pydantic_core import PydanticCustomError

from launcher.errors import ConfigError
from profiles.model import DEFAULT_MAX_ONGOING_REQUESTS, FIELDS, Profile, ProfileError

SCHEMA = "launch.probe"
SCHEMA_VERSION = 4
"""The version this launch writes; it reads this one and, through migration steps, versions 1 and 2."""


class ResultFileError(ConfigError):
    """A result file is unreadable, truncated, foreign, malformed or of a schema version this launch does not read."""


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


WORK_KINDS: tuple[Kind, ...] = (Kind.API, Kind.DEMO)
"""The kinds that carry work (a health check carries none)."""


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


class ConformanceCheck(enum.StrEnum):
    """One check of the server conformance check (:mod:`launcher.probe.conformance`)."""

    NO_FALSE_DISCONNECT = "no_false_disconnect"
    """Repeated ``is_disconnected()`` polls (a ``receive()`` in a cancelled scope) on a live request report none."""
    STREAM_WHOLE = "stream_whole"
    """An event stream written as Gradio's reaches the client whole."""
    DISCONNECT_SEEN = "disconnect_seen"
    """A client that leaves mid-stream is seen by the app."""
    CANCEL_PROPAGATES = "cancel_propagates"
    """When the client leaves, the request's work ends (its task cancelled, or its generator closed)."""


EVENT_STREAM_CHECKS: tuple[ConformanceCheck, ...] = (
    ConformanceCheck.NO_FALSE_DISCONNECT,
    ConformanceCheck.STREAM_WHOLE,
)
"""The checks a server must pass for Gradio's event stream to work: its loop polls ``is_disconnected()`` on every
pass and streams its messages as these checks do, so failing either breaks demo clicks."""


@dataclass(frozen=True, kw_only=True)
class CheckOutcome:
    """How a server fared in one conformance check."""

    check: ConformanceCheck
    passed: bool
    observed: str
    """The counts, e.g. ``4 of 4 requests reported a disconnect (first at poll 3 of 100)``."""
    mechanism: str = ""
    """When failed: what the server did, in words that do not change between runs (no counts, no ids)."""


@dataclass(frozen=True, kw_only=True)
class Conformance:
    """A backend's server conformance check, run once per backend per probe run."""

    backend: str
    relay: bool = False
    """Checked behind the launcher's disconnect relay (a profile's ``disconnect_relay``)."""
    server: str
    """The server's package, e.g. ``gunicorn``."""
    version: str | None
    """Its installed version (``importlib.metadata``); None when not installed."""
    outcomes: tuple[CheckOutcome, ...] = ()
    seconds: float = 0.0
    """Wall time of the check: the server's start, the checks and its stop."""
    error: str | None = None
    """Why the check did not run or could not finish (then ``outcomes`` is empty or partial)."""

    @property
    def event_stream_defect(self) -> CheckOutcome | None:
        """The first failed check that breaks Gradio's event stream, if any."""
        for outcome in self.outcomes:
            if outcome.check in EVENT_STREAM_CHECKS and not outcome.passed:
                return outcome
        return None

    @property
    def server_defect(self) -> str | None:
        """``server defect: MECHANISM (SERVER VERSION)`` when the server breaks Gradio's event stream, else None."""
        defect = self.event_stream_defect
        if defect is None:
            return None
        return f"server defect: {defect.mechanism} ({self.server} {self.version or 'version unknown'})"


def _result_profile(value: Any, handler: pydantic.ValidatorFunctionWrapHandler) -> Profile:
    # A result records the set-up that ran: every field of it (not today's defaults), none that this launch
    # does not know (it could neither describe nor redeploy that set-up), each value as a profiles file must
    # hold it. Profile's own checks raise ProfileError, which pydantic lets through without its place in the
    # file (it is no ValueError): it becomes a located validation error here.
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(FIELDS))
        if unknown:
            raise PydanticCustomError("profile_field", "unknown field {field}", {"field": repr(unknown[0])})
        missing = [key for key in FIELDS if key not in value]
        if missing:
            raise PydanticCustomError("profile_field", "missing field {field}", {"field": repr(missing[0])})
    try:
        profile: Profile = handler(value)
    except ProfileError as exc:
        raise PydanticCustomError("profile_value", "{problem}", {"problem": str(exc)}) from None
    return profile


ResultProfile = Annotated[Profile, pydantic.WrapValidator(_result_profile)]
"""A :class:`profiles.Profile` as a result file holds it: an object of exactly its fields."""


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

    kind: Kind
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

    @property
    def interval_ns(self) -> tuple[int, int]:
        """When the work ran (monotonic ns): the server's interval when it reported one, else send to answer."""
        return (
            self.start_ns if self.start_ns is not None else self.sent_ns,
            self.end_ns if self.end_ns is not None else self.received_ns,
        )

    @property
    def served_by(self) -> int | None:
        """The worker pid that ran it.

        A demo click without a result pid: the one that ran its event stream (where the event ran), else its join.
        """
        return self.pid or self.steps.get("stream") or self.steps.get("join")


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
    overlapped_with: tuple[str, ...] = ()
    """What else ran during this burst: ``timeout:PROFILE`` for another profile's timeout scenario fired side by
    side with it, ``idle:PROFILE`` for a server kept waiting (no request) for its timeout scenario. Empty: alone."""

    @property
    def cpu_by_pid(self) -> dict[int, float]:
        """:attr:`cpu_seconds` with integer pids."""
        return {int(pid): seconds for pid, seconds in self.cpu_seconds.items()}

    @property
    def unit_s(self) -> float:
        """CPU seconds of one request's work: measured (CPU time / requests) when known, else the nominal S."""
        done = len([r for r in self.records if r.kind in WORK_KINDS and r.ok])
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
    liveness: Liveness = Liveness.UNKNOWN
    liveness_evidence: str = ""
    liveness_scenario: str = ""
    """The scenario whose /health checks decided :attr:`liveness` (its worst); empty when the class holds by
    construction in every scenario (``async`` mode) or nothing was polled."""
    makespan: Figure | None = None
    """Total makespan of the bursts (timeout scenario excluded), per repeat."""
    demo_pids: tuple[int, ...] = ()
    """Every pid that answered a Gradio queue request (join, stream) or ran a click."""
    processes: int = 1
    """Server processes: workers, plus a supervisor for multi-process backends."""


@dataclass(frozen=True, kw_only=True)
class ProfileResult:
    """Everything measured for one profile."""

    profile: ResultProfile
    source: str | None
    status: Status
    ready_seconds: float | None = None
    pids: tuple[int, ...] = ()
    launcher_pid: int | None = None
    """The ``launch --profile`` process (a worker itself when the backend serves in process)."""
    error: str | None = None
    log_tail: str = ""
    scenarios: tuple[ScenarioResult, ...] = ()
    stop_seconds: float | None = None
    stop_forced: bool = False
    start_overlapped_with: tuple[str, ...] = ()
    """``stop:PROFILE`` for a profile still stopping while this one started (its ready time shared the CPU with
    that stop); no burst ever overlaps a stop. Empty: the start was alone."""
    assessment: Assessment | None = None
    """The two verdicts and the figures the recommendation compares; judged once, by the probe."""

    @property
    def name(self) -> str:
        """The profile's name."""
        return self.profile.name

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
    verdict: ClaimVerdict
    evidence: str
    summary: str = ""
    """The evidence in one short line, for the default terminal output."""


@dataclass(frozen=True, kw_only=True)
class Recommendation:
    """The profile to deploy, and why the others lost."""

    profile: ResultProfile
    source: str | None
    ready_seconds: float | None
    why: str
    rejected: dict[str, str] = field(default_factory=dict)
    tied: tuple[str, ...] = ()
    """Profiles within the measured spread of the winner (itself included), when there was a tie."""
    rule: str = ""
    """How the winner was chosen among the candidates, in words."""


@dataclass(frozen=True, kw_only=True)
class LoadCheck:
    """One fit profile held at the user's target rate (``launch probe --target-rate``), open loop, demo clicked."""

    profile: str
    backend: str
    processes: int
    """Server processes of the profile (the tie-break: fewer first)."""
    workers: int
    """The processes that serve the route (a split profile's API group): what scales the rate."""
    carried: bool
    """p99 within the target, no error, enough answers per second, every demo click done (the rule: see
    :mod:`launcher.capacity.load`)."""
    seconds: float = 0.0
    """How long the rate was held."""
    requests: int = 0
    """Requests the schedule held."""
    errors: int = 0
    achieved_rate: float = 0.0
    p50_s: float | None = None
    """The hold's median latency (from the scheduled send, as the p99)."""
    p99_s: float | None = None
    demo_clicks: int = 0
    demo_failures: int = 0
    knee: float | None = None
    """The highest rate that met the p99 target in a short search around the target rate (None: none did)."""
    knee_capped: bool = False
    """Every rate of the search met the target: the knee is at least :attr:`knee`."""
    why: str = ""
    """The check in words: what it carried, or what failed first."""
    error: str | None = None
    """The profile could not be checked (it did not start, or died): the reason."""


@dataclass(frozen=True, kw_only=True)
class LoadDecision:
    """The recommendation against the user's load: the simplest fit profile that carries it, or why none does."""

    rate: float
    route: str
    p99_s: float
    checks: tuple[LoadCheck, ...] = ()
    chosen: str | None = None
    why: str = ""
    rule: str = ""


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
    conformance: tuple[Conformance, ...] = ()
    """The server conformance check of each backend the run probed (see :mod:`launcher.probe.conformance`)."""
    load: LoadDecision | None = None
    """With ``--target-rate``: each fit profile held at that rate, and the simplest that carries it."""

    def conformance_of(self, backend: str, *, relay: bool = False) -> Conformance | None:
        """The conformance check of ``backend`` (behind the disconnect relay or not) in this run, if it ran."""
        return next((c for c in self.conformance if c.backend == backend and c.relay == relay), None)

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


# Reading result files back. One reader for every command that reads them
# (``launch report``, ``launch systemd --from-report``, ``launch probe
# --resume``): pydantic validates the JSON against the dataclasses above, in
# strict mode (no "1" for 1, no true for 1; JSON arrays become the tuples).


_EXPECTED = {
    "missing": "missing",
    "dict_type": "expected an object",
    "dataclass_type": "expected an object",
    "list_type": "expected an array",
    "tuple_type": "expected an array",
    "int_type": "expected an integer",
    "float_type": "expected a number",
    "string_type": "expected text",
    "bool_type": "expected true or false",
    "none_required": "expected null",
}


@functools.cache
def _adapter() -> pydantic.TypeAdapter[ProbeRun]:
    # Built on first use: after every dataclass of the module is defined.
    return pydantic.TypeAdapter(ProbeRun)


def _where(loc: tuple[int | str, ...]) -> str:
    """A pydantic location as a path: ``profiles[0].scenarios[1].records[3].pid``."""
    where = ""
    for part in loc:
        if isinstance(part, int):
            where += f"[{part}]"
        elif part in ("dataclass-fields", "dataclass-args", "function-after", "nullable", "union"):
            continue  # pydantic's own layers, not the file's
        else:
            where += f".{part}" if where else str(part)
    return where or "the file"


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list | tuple):
        return "an array"
    return "an object"


def _one_line_error(exc: pydantic.ValidationError) -> str:
    errors = exc.errors(include_url=False)
    first = errors[0]
    where = _where(tuple(first["loc"]))
    problem = _EXPECTED.get(first["type"])
    if first["type"] == "missing":
        line = f"{where}: missing"
    elif problem is not None:
        line = f"{where}: {problem}, got {_json_kind(first['input'])}"
    else:
        line = f"{where}: {first['msg']}"
    if len(errors) > 1:
        line += f" (and {len(errors) - 1} more)"
    return f"malformed launch probe result: {line}"


_ADDED_IN_V1: dict[str, Any] = {"max_ongoing_requests": DEFAULT_MAX_ONGOING_REQUESTS}
"""Profile fields added while version 1 was written, with the value a run had before: files written
before lack them. (Ray Serve's own default: no earlier profile set it.)"""


def _from_v1(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 to 2: a profile object holds every field of the profile.

    Version 1 read profile objects as free-form dicts, so its older files lack
    the fields added since (:data:`_ADDED_IN_V1`): they get the value those runs
    had. Anything else stays as written, for version 2's checks: every other
    field was always written, and a key no profile has is refused.
    """
    return _complete_profiles({**data, "schema_version": 2}, _ADDED_IN_V1)


def _complete_profiles(data: dict[str, Any], added: dict[str, Any]) -> dict[str, Any]:
    """``data`` with each profile object (results' and the recommendation's) given the ``added`` fields it lacks."""

    def complete(profile: Any) -> Any:
        if not isinstance(profile, dict):
            return profile  # refused by the validator, with its place
        return {**added, **profile}

    migrated = dict(data)
    profiles = data.get("profiles")
    if isinstance(profiles, list):
        migrated["profiles"] = [
            {**p, "profile": complete(p["profile"])} if isinstance(p, dict) and "profile" in p else p for p in profiles
        ]
    recommendation = data.get("recommendation")
    if isinstance(recommendation, dict) and "profile" in recommendation:
        migrated["recommendation"] = {**recommendation, "profile": complete(recommendation["profile"])}
    return migrated


_ADDED_IN_V3: dict[str, Any] = {"disconnect_relay": False, "topology": "single"}
"""Profile fields added with version 3, with the value every earlier run had (no relay; the split topology
came later, so every earlier profile was ``single``)."""


def _from_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Version 2 to 3: the conformance check (none in version 2's runs) and the profile fields of version 3.

    A profile object gets the fields added with version 3 (:data:`_ADDED_IN_V3`), with the value those runs had.
    """
    migrated = {**data, "schema_version": 3, "conformance": data.get("conformance", [])}
    return _complete_profiles(migrated, _ADDED_IN_V3)


def _from_v3(data: dict[str, Any]) -> dict[str, Any]:
    """Version 3 to 4: the load check (``--target-rate``), which version 3's runs did not have."""
    return {**data, "schema_version": 4, "load": data.get("load")}


_MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _from_v1, 2: _from_v2, 3: _from_v3}
"""For each older version that is still read, the step to the next version."""


def _check_header(data: Any) -> int:
    """The file's schema version, once it is one this launch reads."""
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ResultFileError('not a launch probe result (missing "schema": "launch.probe")')
    version = data.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise ResultFileError("schema_version is missing or not an integer")
    if version > SCHEMA_VERSION:
        raise ResultFileError(
            f"schema_version {version} is newer than this launch understands ({SCHEMA_VERSION}); upgrade launch"
        )
    if version != SCHEMA_VERSION and version not in _MIGRATIONS:
        readable = ", ".join(str(v) for v in sorted({*_MIGRATIONS, SCHEMA_VERSION}))
        raise ResultFileError(f"schema_version {version} is not one this launch reads ({readable})")
    return version


def _validate(text: str | bytes) -> ProbeRun:
    try:
        return _adapter().validate_json(text, strict=True)
    except pydantic.ValidationError as exc:
        raise ResultFileError(_one_line_error(exc)) from None


def _from_data(data: Any, text: str | None = None) -> ProbeRun:
    """Check the header, bring an older version up to date, validate; ``text``: ``data`` as read, if at hand."""
    version = _check_header(data)
    if version == SCHEMA_VERSION and text is not None:
        return _validate(text)  # straight from the text: no second serialization
    while version < SCHEMA_VERSION:
        data = _MIGRATIONS[version](data)
        version += 1
    return _validate(json.dumps(data))


def run_from_json(data: Any) -> ProbeRun:
    """Rebuild a run from :func:`run_to_json` output; :class:`ResultFileError` (one line) if it is not one."""
    return _from_data(data)


def read_run(path: Path) -> ProbeRun:
    """Read a result file; :class:`ResultFileError` with one line when it cannot be read or is not one.

    The message does not repeat ``path``: callers put it first.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ResultFileError(f"not a launch probe result (not UTF-8 text at byte {exc.start})") from None
    except OSError as exc:
        raise ResultFileError(f"cannot read: {exc.strerror or type(exc).__name__}") from None
    return load_run(text)


def load_run(text: str) -> ProbeRun:
    """Parse JSON text into a run; :class:`ResultFileError` with one line (and the byte offset) when it is not one."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        offset = len(text[: exc.pos].encode("utf-8"))
        if not text.strip():
            raise ResultFileError("not valid JSON: the file is empty") from None
        if exc.pos >= len(text.rstrip()):
            raise ResultFileError(
                f"not valid JSON: it ends at byte {offset}, mid-document (truncated? an interrupted copy?)"
            ) from None
        raise ResultFileError(
            f"not valid JSON at byte {offset} (line {exc.lineno}, column {exc.colno}): {exc.msg}"
        ) from None
    except RecursionError:
        raise ResultFileError("not a launch probe result (nested too deeply)") from None
    return _from_data(data, text)
