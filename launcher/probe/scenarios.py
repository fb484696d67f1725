"""The probe's scenario catalogue: which bursts exist, what each one sends, and to which profiles it applies.

Pure planning, no I/O: :mod:`launcher.probe.runner` fires what :func:`plan` lists, the progress display
estimates the run from :func:`deferred_plan`, and the CLI validates its options with :class:`ProbeOptions`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from app.settings import MAX_SECONDS, MAX_STEPS
from launcher.child import DEFAULT_START_TIMEOUT
from launcher.errors import ConfigError
from launcher.probe.client import RequestSpec
from launcher.probe.limits import DEFAULT_REPEATS, MAX_REPEATS, MAX_REQUESTS
from launcher.probe.model import Conformance, Kind
from profiles.model import Profile

SCENARIOS: tuple[str, ...] = ("sleep", "cpu", "generate", "mixed", "liveness", "timeout", "noawait")
"""The default set. ``liveness`` is not a burst of its own: it polls /health during every burst.
``noawait`` calls the lab route that makes the write-up's missing-await mistake (1-worker profiles)."""
EXTRA_SCENARIOS: tuple[str, ...] = ("slowclients",)
"""Asked for by name only: clients that send half a request and stall."""
ALL_SCENARIOS: tuple[str, ...] = SCENARIOS + EXTRA_SCENARIOS
BURST_SCENARIOS: tuple[str, ...] = tuple(s for s in ALL_SCENARIOS if s != "liveness")
SLOW_CLIENTS = 50
SLOW_CLIENT_SECONDS = 2.0
SEED_SLEEP_S = 10.0
"""The write-up's ``time.sleep(10)``."""
SEED_CPU_S = 8.0
"""The write-up's ``for i in range(100000000)``: about 8 s on its machine."""
TIMEOUT_OVERSHOOT_S = 3.0
"""The timeout scenario's work lasts the profile's timeout plus this."""
ONCE_SCENARIOS: tuple[str, ...] = ("timeout", "noawait", "slowclients")
"""Not repeated: they reproduce a mechanism (a kill, an error), not a figure with a spread."""


@dataclass(frozen=True, kw_only=True)
class ProbeOptions:
    """How hard and how long to probe."""

    scenarios: tuple[str, ...] = SCENARIOS
    requests: int = 3
    """N: concurrent requests per burst (mixed: N demo clicks and N API calls)."""
    seconds: float = 1.0
    """S: work per sleep/CPU request."""
    cpu_seconds: float | None = None
    """Work per CPU request; ``seconds`` when None."""
    steps: int = 4
    repeat: int = DEFAULT_REPEATS
    """R: how many times each burst is fired."""
    fail_fast: bool = False
    start_timeout: float = DEFAULT_START_TIMEOUT
    cpu_rate: float | None = None

    def __post_init__(self) -> None:
        unknown = [s for s in self.scenarios if s not in ALL_SCENARIOS]
        if unknown:
            raise ConfigError(f"unknown scenario {unknown[0]!r}: expected some of {', '.join(ALL_SCENARIOS)}")
        if not self.scenarios:
            raise ConfigError("no scenario given")
        if not 1 <= self.requests <= MAX_REQUESTS:
            raise ConfigError(f"requests = {self.requests}: expected 1 to {MAX_REQUESTS}")
        if not 0 < self.seconds <= MAX_SECONDS:
            raise ConfigError(f"seconds = {self.seconds:g}: expected more than 0 and at most {MAX_SECONDS:g}")
        if self.cpu_seconds is not None and not 0 < self.cpu_seconds <= MAX_SECONDS:
            raise ConfigError(f"cpu_seconds = {self.cpu_seconds:g}: expected more than 0 and at most {MAX_SECONDS:g}")
        if not 1 <= self.repeat <= MAX_REPEATS:
            raise ConfigError(f"repeat = {self.repeat}: expected 1 to {MAX_REPEATS}")
        if not 1 <= self.steps <= MAX_STEPS:
            raise ConfigError(f"steps = {self.steps}: expected 1 to {MAX_STEPS}")
        if self.start_timeout <= 0:
            raise ConfigError(f"start_timeout = {self.start_timeout:g}: expected more than 0")

    @classmethod
    def seeded(cls, **kwargs: object) -> ProbeOptions:
        """The write-up's durations: 10 s sleeps and ~8 s CPU loops."""
        return cls(seconds=SEED_SLEEP_S, cpu_seconds=SEED_CPU_S, **kwargs)  # type: ignore[arg-type]

    @property
    def cpu_s(self) -> float:
        """Seconds per CPU request."""
        return self.cpu_seconds if self.cpu_seconds is not None else self.seconds


@dataclass(frozen=True, kw_only=True)
class ProfileTarget:
    """A profile to probe and the file it came from (None: built in)."""

    profile: Profile
    source: Path | None = None
    conformance: Conformance | None = None
    """Its backend's server conformance check in this run (behind the disconnect relay when the profile has it):
    what the expectations predict the demo from."""
    relayed: Conformance | None = None
    """Its backend's check behind the disconnect relay, when run: what the advice on a server defect says."""


def plan(scenario: str, profile: Profile, options: ProbeOptions) -> list[RequestSpec]:
    """The requests of one burst; API paths under the profile's API prefix (``/api`` in the split topology)."""
    specs = _plan(scenario, profile, options)
    if not profile.api_prefix:
        return specs
    return [
        dataclasses.replace(spec, path=profile.api_prefix + spec.path) if spec.kind == Kind.API and spec.path else spec
        for spec in specs
    ]


def _plan(scenario: str, profile: Profile, options: ProbeOptions) -> list[RequestSpec]:
    n, s = options.requests, options.seconds
    if scenario == "sleep":
        return [RequestSpec(kind=Kind.API, work="sleep", path=f"/test1?seconds={s:g}") for _ in range(n)]
    if scenario == "cpu":
        return [RequestSpec(kind=Kind.API, work="cpu", path=f"/test2?seconds={options.cpu_s:g}") for _ in range(n)]
    if scenario == "generate":
        return [
            RequestSpec(kind=Kind.API, work="generate", path=f"/generate?steps={options.steps}&seed={i}&format=json")
            for i in range(n)
        ]
    if scenario == "mixed":
        # Demo clicks first, API calls 50 ms later: the write-up's experiment,
        # and the order that shows whether a later API call can overtake.
        demo = [RequestSpec(kind=Kind.DEMO, work="sleep", api_name="/sleep", args=(s,)) for _ in range(n)]
        api = [RequestSpec(kind=Kind.API, work="sleep", path=f"/test1?seconds={s:g}", delay_s=0.05) for _ in range(n)]
        return demo + api
    if scenario == "timeout":
        return [
            RequestSpec(kind=Kind.API, work="sleep", path=f"/test1?seconds={profile.timeout + TIMEOUT_OVERSHOOT_S:g}")
        ]
    if scenario == "noawait":
        # One lone API call, then a demo click and an API call at once: does
        # the error need simultaneity, as the write-up says, or only the missing await?
        return [
            RequestSpec(kind=Kind.API, work="noawait", path="/lab/noawait"),
            RequestSpec(kind=Kind.DEMO, work="noawait", api_name="/lab_noawait", delay_s=0.3),
            RequestSpec(kind=Kind.API, work="noawait", path="/lab/noawait", delay_s=0.3),
        ]
    if scenario == "slowclients":
        return []
    raise ValueError(f"no burst for scenario {scenario!r}")


@dataclass(frozen=True, kw_only=True)
class DeferredPlan:
    """The timeout scenarios a run will defer to its end (one batch, side by side): for the time estimate."""

    count: int = 0
    seconds: float = 0.0
    """How long the longest of their requests lasts (its profile's timeout and the overshoot)."""


def deferred_plan(targets: Sequence[ProfileTarget], scenarios: Sequence[str]) -> DeferredPlan:
    """What :func:`launcher.probe.runner.run_probe` will run at the end for ``targets`` with ``scenarios``."""
    if "timeout" not in scenarios:
        return DeferredPlan()
    timeouts = [t.profile.timeout for t in targets if applies("timeout", t.profile)]
    return DeferredPlan(count=len(timeouts), seconds=max(timeouts, default=0.0) + TIMEOUT_OVERSHOOT_S * bool(timeouts))


def applies(scenario: str, profile: Profile) -> bool:
    """Whether ``scenario`` means anything for ``profile`` (only gunicorn's arbiter has a worker timeout)."""
    if scenario == "timeout":
        return profile.backend in ("gunicorn", "gunicorn-asgi") and profile.timeout + TIMEOUT_OVERSHOOT_S <= MAX_SECONDS
    if scenario == "generate":
        return profile.model != "none"
    if scenario == "noawait":
        # One worker: a split demo queue would muddle what the error comes from.
        return profile.workers == 1
    return scenario in BURST_SCENARIOS


def burst_timeout(specs: Sequence[RequestSpec], options: ProbeOptions, profile: Profile) -> float:
    """How long a burst of ``specs`` may take at most before its requests are given up."""
    # Generous and bounded: every request done one after another, three
    # times over, plus start-up slack for workers replaced mid-burst.
    per_request = max(options.seconds, options.cpu_s, profile.timeout + TIMEOUT_OVERSHOOT_S if len(specs) == 1 else 0)
    return 3 * len(specs) * per_request + 30
