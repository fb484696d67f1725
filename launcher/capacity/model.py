"""Pure parts of a capacity sweep: schedules, latency from scheduled times, the knee search, sizing, JSON.

Nothing here does I/O or reads a clock, so every rule can be tested on its
own. All times are ``time.monotonic_ns()`` values: on Linux one clock for every
process, so the client's scheduled/send/receive times and the server's
``start_ns``/``end_ns`` attribution compare directly.

Latency is measured from the **scheduled** send time, not the actual one. An
open-loop generator that falls behind (its event loop busy, the machine
loaded) still charges the delay to the request, so queueing cannot hide behind
a late send: the coordinated-omission correction of wrk2 and k6's
arrival-rate executors.

JSON schema ``launch.capacity`` version 1 (see :func:`run_to_json`)::

    {"schema": "launch.capacity", "schema_version": 1, "complete": bool,
     "created": ISO-8601, "machine": {...}, "options": {...},
     "profiles": [ProfileCapacity...], "sizing": Sizing | null}
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from launcher.errors import ConfigError
from launcher.probe.metrics import covered_ns, percentile
from launcher.probe.model import Status
from profiles.model import Profile, ProfileError

SCHEMA = "launch.capacity"
SCHEMA_VERSION = 1

MAX_REQUESTS_PER_STEP = 20_000
"""A step never schedules more than this, whatever rate x duration asks for (memory and sockets stay bounded)."""
TARGET_QUANTILE = 99.0
"""The percentile the target applies to (``--p99``)."""

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m)?\s*$")
_RATE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(?:/\s*(s|sec|second|m|min|minute|h|hour))?\s*$")
_RATE_UNITS = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0, "h": 3600.0, "hour": 3600.0}


class CapacityFileError(ConfigError):
    """A capacity result file is unreadable, truncated, foreign or of a newer schema."""


def parse_duration(text: str) -> float:
    """``2s``, ``500ms``, ``1.5`` (seconds), ``1m`` -> seconds; :class:`ConfigError` otherwise."""
    match = _DURATION.match(text)
    if match is None:
        raise ConfigError(f"unreadable duration {text!r}: expected e.g. 2s, 500ms or 0.5")
    value = float(match.group(1)) * {"ms": 1e-3, "s": 1.0, "m": 60.0, None: 1.0}[match.group(2)]
    if value <= 0:
        raise ConfigError(f"duration {text!r} must be above zero")
    return value


def parse_rate(text: str) -> float:
    """``5/s``, ``300/min``, ``5`` (per second) -> requests per second; :class:`ConfigError` otherwise."""
    match = _RATE.match(text)
    if match is None:
        raise ConfigError(f"unreadable rate {text!r}: expected e.g. 5/s, 300/min or 5")
    value = float(match.group(1)) / _RATE_UNITS[match.group(2) or "s"]
    if value <= 0:
        raise ConfigError(f"rate {text!r} must be above zero")
    return value


def schedule(rate: float, seconds: float, *, limit: int = MAX_REQUESTS_PER_STEP) -> list[float]:
    """Send offsets (s from the step's start) of a constant arrival rate: ``i / rate``, at least one, at most ``limit``.

    A fixed, precomputed schedule (not Poisson): the same step sends the same
    requests on every run, and its rate is exact over any whole second.
    """
    if rate <= 0 or seconds <= 0:
        raise ValueError("rate and seconds must be positive")
    count = max(1, min(limit, math.floor(rate * seconds + 1e-9)))
    return [i / rate for i in range(count)]


# --- what the generator records ----------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Sample:
    """One request of a step: when it was due, sent and answered, and who did its work."""

    index: int
    scheduled_ns: int
    sent_ns: int
    received_ns: int
    status: int | None = None
    error: str | None = None
    pid: int | None = None
    start_ns: int | None = None
    end_ns: int | None = None

    @property
    def ok(self) -> bool:
        """Completed with a 2xx answer."""
        return self.error is None and self.status is not None and 200 <= self.status < 300

    @property
    def latency_s(self) -> float:
        """From the scheduled send time to the answer: what a user arriving on schedule waited."""
        return (self.received_ns - self.scheduled_ns) / 1e9

    @property
    def latency_from_sent_s(self) -> float:
        """From the actual send to the answer: what a closed-loop client would report."""
        return (self.received_ns - self.sent_ns) / 1e9

    @property
    def send_lag_s(self) -> float:
        """How late the generator sent it."""
        return (self.sent_ns - self.scheduled_ns) / 1e9


def busy_fraction(intervals: Iterable[tuple[int, int]], window: tuple[int, int]) -> float:
    """Share of ``window`` covered by the union of ``intervals`` (ns), each clipped to the window.

    The union, not the sum: a worker running three sleeps at once on three
    threads is busy once, not three times (and a CPU-bound worker cannot be
    more than busy under one GIL).
    """
    lo, hi = window
    if hi <= lo:
        return 0.0
    return covered_ns((max(a, lo), min(b, hi)) for a, b in intervals if b > lo and a < hi) / (hi - lo)


@dataclass(frozen=True, kw_only=True)
class StepResult:
    """One step of the sweep: a rate held for a while, and what it did to latency."""

    rate: float
    """Scheduled arrival rate (requests/s)."""
    seconds: float
    scheduled: int
    """Requests the schedule held."""
    sent: int
    ok: int
    errors: int
    error_kinds: dict[str, int] = field(default_factory=dict)
    achieved_rate: float = 0.0
    """Successful answers per second, between the first answer and the last (see :func:`completion_rate`)."""
    p50_s: float | None = None
    p90_s: float | None = None
    p99_s: float | None = None
    max_s: float | None = None
    p99_from_sent_s: float | None = None
    """The same p99 measured from the actual send: what a client without the correction would report."""
    send_lag_p99_s: float | None = None
    """How late the generator itself was (p99 of actual send minus schedule)."""
    passed: bool = False
    why: str = ""
    stopped_early: bool = False
    """Sending stopped once the step had certainly missed the target (it sheds the queue it would build)."""
    utilisation: dict[str, float] = field(default_factory=dict)
    """Per worker pid: busy time / step time, from the server's work intervals."""
    gpu_busy: float | None = None
    """Mean GPU busy fraction during the step (NVML), when a GPU was watched."""
    gpu_memory_mib: dict[str, float] = field(default_factory=dict)
    """Per worker pid: GPU memory at the step's end (NVML), when a GPU was watched."""

    @property
    def error_rate(self) -> float:
        """Failed requests over sent ones."""
        return self.errors / self.sent if self.sent else 0.0


KEEP_UP = 0.9
"""A step sustains its rate only if answers come at least this fast: with short steps, a rate above the
service rate builds a queue too small to push the p99 over the target before the step ends (measured here:
uvicorn-1-offload on 50 ms sleeps serves 19/s, yet 1 s steps at 28/s kept the p99 at 0.49 s). 0.9, not 1.0:
completions of a keeping-up server jitter by a few ms around the schedule."""
KEEP_UP_MIN_SAMPLES = 10
"""Fewer answers than this say too little about a rate to judge it by."""


def completion_rate(ok: Sequence[Sample], seconds: float) -> float:
    """Answers per second between the first and the last answer; ``len / seconds`` for fewer than two.

    Measured between answers, not from the step's start, so that a long
    latency does not read as a low rate: a server that keeps up answers at the
    arrival rate whatever each answer's delay, one that does not answers at
    its service rate.
    """
    if len(ok) < 2:
        return len(ok) / seconds if seconds > 0 else 0.0
    first = min(s.received_ns for s in ok)
    last = max(s.received_ns for s in ok)
    if last <= first:
        return len(ok) / seconds
    return (len(ok) - 1) / ((last - first) / 1e9)


def allowed_misses(scheduled: int, quantile: float = TARGET_QUANTILE) -> int:
    """How many requests of a step may exceed the target while its ``quantile`` still meets it."""
    return math.floor(scheduled * (100.0 - quantile) / 100.0 + 1e-9)


def summarize_step(
    samples: Sequence[Sample],
    *,
    rate: float,
    seconds: float,
    scheduled: int,
    started_ns: int,
    target_s: float,
    stopped_early: bool = False,
    worker_pids: Iterable[int] = (),
    gpu_busy: float | None = None,
    gpu_memory_mib: Mapping[str, float] | None = None,
) -> StepResult:
    """Percentiles from scheduled times, errors, achieved rate, utilisation and the verdict of one step.

    The step passes when every request was sent and answered with a 2xx and
    the p99 latency (from the schedule) is within the target.
    """
    ok = [s for s in samples if s.ok]
    failed = [s for s in samples if not s.ok]
    kinds: dict[str, int] = {}
    for s in failed:
        kind = s.error or f"http_{s.status}"
        kinds[kind] = kinds.get(kind, 0) + 1
    latencies = [s.latency_s for s in ok]
    p99 = percentile(latencies, 99)
    achieved = completion_rate(ok, seconds)
    keeps_up = len(ok) < KEEP_UP_MIN_SAMPLES or achieved >= KEEP_UP * rate
    window = (started_ns, started_ns + round(seconds * 1e9))
    intervals: dict[int, list[tuple[int, int]]] = {pid: [] for pid in worker_pids}
    for s in ok:
        if s.pid is not None and s.start_ns is not None and s.end_ns is not None:
            intervals.setdefault(s.pid, []).append((s.start_ns, s.end_ns))
    utilisation = {str(pid): round(busy_fraction(spans, window), 4) for pid, spans in sorted(intervals.items())}
    if failed:
        why = f"{len(failed)} of {len(samples)} failed ({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))})"
    elif stopped_early:
        why = f"stopped early: more than {allowed_misses(scheduled)} requests over {target_s:g} s"
    elif len(samples) < scheduled:
        why = f"only {len(samples)} of {scheduled} sent"
    elif p99 is None or p99 > target_s:
        why = f"p99 {p99 or 0:.3f} s > target {target_s:g} s"
    elif not keeps_up:
        why = f"answers came at {achieved:.3g}/s < {KEEP_UP:g} x {rate:g}/s: a queue grows"
    else:
        why = f"p99 {p99:.3f} s <= target {target_s:g} s"
    passed = (
        not failed
        and not stopped_early
        and len(samples) >= scheduled
        and keeps_up
        and p99 is not None
        and p99 <= target_s
    )
    return StepResult(
        rate=rate,
        seconds=seconds,
        scheduled=scheduled,
        sent=len(samples),
        ok=len(ok),
        errors=len(failed),
        error_kinds=kinds,
        achieved_rate=achieved,
        p50_s=percentile(latencies, 50),
        p90_s=percentile(latencies, 90),
        p99_s=p99,
        max_s=max(latencies, default=None),
        p99_from_sent_s=percentile([s.latency_from_sent_s for s in ok], 99),
        send_lag_p99_s=percentile([s.send_lag_s for s in samples], 99),
        passed=passed,
        why=why,
        stopped_early=stopped_early,
        utilisation=utilisation,
        gpu_busy=gpu_busy,
        gpu_memory_mib=dict(gpu_memory_mib or {}),
    )


# --- the knee search -----------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SearchPolicy:
    """How the sweep moves: geometric steps up to the first miss, then a bounded bisection."""

    start: float = 1.0
    factor: float = 2.0
    max_rate: float = 200.0
    bisections: int = 4
    tolerance: float = 0.05
    """Stop narrowing once the bracket is this tight (hi / lo)."""
    min_rate: float = 0.05
    """Below this the profile is said to have no knee at the target."""

    def __post_init__(self) -> None:
        if not (0 < self.start <= self.max_rate) or self.factor <= 1 or self.bisections < 0 or self.min_rate <= 0:
            raise ValueError(f"invalid search policy {self}")

    @property
    def max_steps(self) -> int:
        """An upper bound on the steps :func:`next_rate` can ask for."""
        # Rates are rounded to three significant digits (down by up to 0.5 %), so a
        # step may climb a little less than ``factor``: bound with the slowest climb.
        slowest = self.factor * (1 - 0.005)
        ramp = math.ceil(math.log(self.max_rate / self.start) / math.log(slowest) - 1e-9) + 1
        return ramp + self.bisections


def _nice(rate: float) -> float:
    """Three significant digits: rates that read well in a table."""
    if rate <= 0:
        return rate
    digits = 2 - math.floor(math.log10(rate))
    return round(rate, digits)


def bracket(history: Sequence[tuple[float, bool]]) -> tuple[float, float]:
    """(highest passing rate below the lowest failing one or 0, lowest failing rate or inf)."""
    hi = min((r for r, ok in history if not ok), default=math.inf)
    lo = max((r for r, ok in history if ok and r < hi), default=0.0)
    return lo, hi


def next_rate(history: Sequence[tuple[float, bool]], policy: SearchPolicy) -> float | None:
    """The next rate to hold, given ``(rate, passed)`` so far; None when the search is over.

    Up by ``factor`` from ``start`` while every step passes (to ``max_rate``);
    after the first miss, bisect between the best pass and the lowest miss, at
    most ``bisections`` times, until the bracket is within ``tolerance``.
    """
    if not history:
        return policy.start
    lo, hi = bracket(history)
    if math.isinf(hi):
        if lo >= policy.max_rate:
            return None
        return min(_nice(lo * policy.factor), policy.max_rate)
    first_miss = next(i for i, (_, ok) in enumerate(history) if not ok)
    if len(history) - first_miss - 1 >= policy.bisections:
        return None
    if lo > 0 and hi / lo <= 1 + policy.tolerance:
        return None
    candidate = _nice((lo + hi) / 2) if lo > 0 else _nice(hi / policy.factor)
    if candidate < policy.min_rate or candidate <= lo or candidate >= hi:
        return None
    return candidate


def knee(history: Sequence[tuple[float, bool]]) -> float | None:
    """The sustained rate at the target: the highest passing rate below every miss; None if none passed."""
    lo, _ = bracket(history)
    return lo if lo > 0 else None


# --- results -----------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ProfileCapacity:
    """Everything measured for one profile."""

    profile: Profile
    source: str | None
    status: Status
    workers: int = 1
    ready_seconds: float | None = None
    pids: tuple[int, ...] = ()
    steps: tuple[StepResult, ...] = ()
    knee: float | None = None
    capped: bool = False
    """Every step passed up to ``--max-rate``: the knee is at least this, not found."""
    error: str | None = None
    gpu_memory_mib: dict[str, float] = field(default_factory=dict)
    """Per worker pid: GPU memory after the model loaded (NVML), when a GPU was watched."""

    @property
    def name(self) -> str:
        """The profile's name."""
        return self.profile.name

    @property
    def knee_per_worker(self) -> float | None:
        """The knee divided by the worker count."""
        return self.knee / self.workers if self.knee is not None and self.workers > 0 else None

    def step_at(self, rate: float | None) -> StepResult | None:
        """The passing step held at ``rate``."""
        return next((s for s in self.steps if s.rate == rate and s.passed), None)


@dataclass(frozen=True, kw_only=True)
class Sizing:
    """How many workers (and replicas of the best profile) a target rate needs, and whether this machine has them."""

    target_rate: float
    profile: str
    knee: float
    workers: int
    knee_per_worker: float
    workers_needed: int
    replicas_needed: int
    cores: int
    fits_cores: bool
    gpu_memory_mib: float | None = None
    """Total GPU memory of the device watched, when there is one."""
    worker_gpu_mib: float | None = None
    """GPU memory one worker holds (its model copy), when known."""
    copies_fit: int | None = None
    """Model copies that fit in the GPU memory."""
    fits_gpu: bool | None = None
    text: str = ""


def best_profile(profiles: Sequence[ProfileCapacity]) -> ProfileCapacity | None:
    """The profile with the highest knee (fewer workers first on a tie); None when no knee was found."""
    found = [p for p in profiles if p.knee is not None]
    if not found:
        return None
    return max(found, key=lambda p: (p.knee or 0.0, -p.workers))


def size(
    profiles: Sequence[ProfileCapacity], *, target_rate: float, cores: int, gpu_memory_mib: float | None = None
) -> Sizing | None:
    """The sizing answer for ``target_rate`` from the best profile's knee per worker; None without a knee.

    Workers are assumed to add capacity linearly up to the cores (each worker
    is one process; CPU-bound work uses one core each), which is what the
    3-worker against 1-worker knee checks on this machine.
    """
    best = best_profile(profiles)
    if best is None or best.knee is None:
        return None
    per_worker = best.knee / best.workers
    workers_needed = max(1, math.ceil(target_rate / per_worker - 1e-9))
    replicas_needed = max(1, math.ceil(target_rate / best.knee - 1e-9))
    fits_cores = workers_needed <= cores
    worker_gpu = max(best.gpu_memory_mib.values(), default=None) if best.gpu_memory_mib else None
    copies = fits_gpu = None
    if gpu_memory_mib and worker_gpu:
        copies = math.floor(gpu_memory_mib / worker_gpu)
        fits_gpu = workers_needed <= copies
    parts = [
        f"{target_rate:g}/s with {best.name} (knee {best.knee:g}/s over {best.workers} worker(s), "
        f"{per_worker:.3g}/s each) needs {workers_needed} worker(s): {replicas_needed} replica(s) of {best.name}.",
        f"This machine has {cores} core(s): "
        + ("enough." if fits_cores else f"not enough ({workers_needed} workers > {cores} cores)."),
    ]
    if gpu_memory_mib is None:
        parts.append("No GPU.")
    elif worker_gpu is None:
        parts.append(f"GPU: {gpu_memory_mib:.0f} MiB; no per-worker GPU memory was recorded.")
    else:
        parts.append(
            f"GPU: {gpu_memory_mib:.0f} MiB holds {copies} model copies of {worker_gpu:.0f} MiB: "
            + ("enough." if fits_gpu else "not enough.")
        )
    return Sizing(
        target_rate=target_rate,
        profile=best.name,
        knee=best.knee,
        workers=best.workers,
        knee_per_worker=per_worker,
        workers_needed=workers_needed,
        replicas_needed=replicas_needed,
        cores=cores,
        fits_cores=fits_cores,
        gpu_memory_mib=gpu_memory_mib,
        worker_gpu_mib=worker_gpu,
        copies_fit=copies,
        fits_gpu=fits_gpu,
        text=" ".join(parts),
    )


@dataclass(frozen=True, kw_only=True)
class CapacityRun:
    """A whole capacity sweep."""

    created: str
    machine: dict[str, Any]
    options: dict[str, Any]
    profiles: tuple[ProfileCapacity, ...]
    sizing: Sizing | None = None
    complete: bool = True

    @property
    def gpu(self) -> bool:
        """Whether a GPU was watched."""
        return bool(self.machine.get("gpu"))


def run_to_json(run: CapacityRun) -> dict[str, Any]:
    """The run as a JSON-ready dict (schema ``launch.capacity``, current version)."""
    return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, **dataclasses.asdict(run)}


def dump_run(run: CapacityRun) -> str:
    """The run as JSON text."""
    return json.dumps(run_to_json(run), indent=1)


def _fields(cls: type[Any], data: Mapping[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def run_from_json(data: Any) -> CapacityRun:
    """Rebuild a run from :func:`run_to_json` output; :class:`CapacityFileError` if it is not one."""
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise CapacityFileError('not a launch capacity result (missing "schema": "launch.capacity")')
    version = data.get("schema_version")
    if not isinstance(version, int):
        raise CapacityFileError("schema_version is missing or not an integer")
    if version > SCHEMA_VERSION:
        raise CapacityFileError(
            f"schema_version {version} is newer than this launch understands ({SCHEMA_VERSION}); upgrade launch"
        )
    try:
        profiles = tuple(
            ProfileCapacity(
                **{
                    **_fields(ProfileCapacity, p),
                    # The file's profile as it was: keys a profile no longer has are ignored, like the
                    # file's other unknown keys; its values are checked like a profiles file's.
                    "profile": Profile(**_fields(Profile, p["profile"])),
                    "status": Status(p["status"]),
                    "pids": tuple(p.get("pids", ())),
                    "steps": tuple(StepResult(**_fields(StepResult, s)) for s in p.get("steps", ())),
                }
            )
            for p in data["profiles"]
        )
        sizing = data.get("sizing")
        return CapacityRun(
            created=str(data["created"]),
            machine=dict(data["machine"]),
            options=dict(data["options"]),
            profiles=profiles,
            sizing=Sizing(**_fields(Sizing, sizing)) if isinstance(sizing, dict) else None,
            complete=bool(data.get("complete", True)),
        )
    except (KeyError, AttributeError, TypeError, ValueError, ProfileError) as exc:
        raise CapacityFileError(f"malformed launch capacity result: {type(exc).__name__}: {exc}") from None


def read_run(path: Path) -> CapacityRun:
    """Read a capacity result file; :class:`CapacityFileError` with one line when it is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CapacityFileError(f"cannot read {str(path)!r}: {exc}") from None
    return run_from_json(data)


def scaling_notes(profiles: Sequence[ProfileCapacity], *, cores: int) -> list[str]:
    """For each multi-worker profile with a 1-worker sibling (same backend and mode): its knee ratio and the band.

    N workers should sustain between 1x (one process does the work anyway) and
    min(N, cores)x the 1-worker knee (processes run in parallel at most on every
    core): outside that band something other than the worker count decided.
    """
    notes = []
    singles = {(p.profile.backend, p.profile.mode): p for p in profiles if p.workers == 1 and p.knee is not None}
    for p in profiles:
        single = singles.get((p.profile.backend, p.profile.mode))
        if p.workers <= 1 or p.knee is None or single is None or single.knee is None:
            continue
        ratio = p.knee / single.knee
        ceiling = min(p.workers, cores)
        inside = 1.0 <= ratio <= ceiling
        notes.append(
            f"{p.name} knee {p.knee:g}/s = {ratio:.2f}x {single.name}'s {single.knee:g}/s: "
            + (
                f"within 1x-{ceiling}x (min({p.workers} workers, {cores} cores))."
                if inside
                else f"OUTSIDE 1x-{ceiling}x (min({p.workers} workers, {cores} cores))."
                + (
                    " A capped or bracketed knee is only as precise as the last bisection."
                    if p.capped or single.capped
                    else ""
                )
            )
        )
    return notes
