"""``launch probe --app``: probe the user's own service with their scenario file, route by route.

Each profile runs the user's app as a ``launch --profile NAME --app ...``
child (:class:`launcher.child.ServerProcess`), one at a time, with attribution
on: every response names the worker pid and when it ran, and every worker
reports its event-loop lag over the notify channel. Each burst of the scenario
file is fired N at once, R times; :mod:`launcher.probe.routes` turns what it
showed into a class and advice per route. The recommendation across profiles
follows the reference service's rules (:mod:`launcher.probe.recommend`): a
profile qualifies when nothing fails that the code itself does not fail
everywhere, and a profile that serves the app's Gradio demo from more than one
process never qualifies (each process holds its own queue: a structural
hazard, whatever the clicks did); the fastest median
total wins, with ties (within the measured spread or ``TIE_REL``:
:func:`launcher.probe.metrics.within_noise`) broken by
fewer processes, the backend order, then the name.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import functools
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pydantic

from launcher import procs
from launcher.asgi import LAG_FIELD
from launcher.child import ServerProcess
from launcher.errors import ConfigError, StartupError
from launcher.probe.assess import FORCED_STOP, count_processes
from launcher.probe.client import RequestSpec, run_burst
from launcher.probe.model import Figure, Kind, LoadDecision, ResultFileError
from launcher.probe.recommend import Candidate, choose, narrow_load
from launcher.probe.routes import ADVICE, BLOCKS, FAILS, LABELS, BurstFacts, BurstVerdict, classify_burst
from launcher.probe.routes import route_class as overall_class
from launcher.probe.scenario_file import Burst, GradioEndpoint, ScenarioFile
from launcher.userapp import AppShape, AppSpec
from profiles.model import Profile, demo_processes

SCHEMA = "launch.appprobe"
SCHEMA_VERSION = 2
"""2: each profile's ``server_processes`` (the tie-break's count) and the recommendation's ``rule``, from the
one rule shared with the reference probe; ``load``, the ``--target-rate`` check. 1: since ``launch compare``.
Files written before carry no header (read as version 0: no ``created``, ``machine`` or per-route ``n``).
Older versions load with the newer fields empty."""

QUEUE_SPLIT_ADVICE = (
    "The demo's clicks reached different processes, each with its own Gradio queue: serve the demo from one "
    "process (a 1-worker profile, or a split profile: the demo in one process, the API in N)."
)
"""A click that failed as ``queue_split`` fails by the set-up, not by the code: the advice says which set-up."""

LAG_SETTLE_S = 0.25
"""Wait after a burst for the workers' last lag reports (sent every 100 ms) to arrive."""
LOG_LINES = 5


class AppProbeError(ConfigError):
    """The user's app or scenario cannot be probed (one line; exit 2): no answer on the health route, a 404, ..."""


@dataclass(frozen=True, kw_only=True)
class RouteResult:
    """One route under one profile, over its repeats."""

    route: str
    request: str
    route_class: str
    blocks_event_loop: bool
    longest_stall_ms: float
    advice: str
    repeats: tuple[BurstVerdict, ...]
    n: int = 0
    """Requests per burst (0: not recorded, a file of version 0)."""

    @property
    def makespan_s(self) -> float:
        """Median burst makespan over the repeats."""
        return statistics.median(v.makespan_s for v in self.repeats)

    @property
    def spread_s(self) -> float:
        """Max - min burst makespan over the repeats."""
        figures = [v.makespan_s for v in self.repeats]
        return max(figures) - min(figures)

    @property
    def figure(self) -> Figure:
        """The burst makespan over the repeats: median and spread, for the noise rule."""
        figures = [v.makespan_s for v in self.repeats]
        return Figure(median=self.makespan_s, low=min(figures), high=max(figures), samples=len(figures))


@dataclass(frozen=True, kw_only=True)
class AppProfileResult:
    """The user's app under one profile."""

    profile: str
    same_as: tuple[str, ...]
    """Other selected profiles that differ only in fields that do not apply to a user's app (probed once)."""
    backend: str
    workers: int
    ready_seconds: float
    routes: tuple[RouteResult, ...]
    stop_seconds: float
    stop_forced: bool
    topology: str = "single"
    server_processes: int = 0
    """Server processes it ran (its workers and their supervisor), counted at its start; 0: not recorded."""

    @property
    def demo_processes(self) -> int:
        """Processes that would hold the app's Gradio demo, each with its own queue."""
        return demo_processes(self.backend, self.workers, self.topology)

    @property
    def processes(self) -> int:
        """Server processes, as the reference counts them.

        Counted at the start when recorded, else the workers and, for several, their supervisor.
        """
        if self.server_processes:
            return self.server_processes
        return self.workers + 1 if self.workers > 1 else self.workers

    @property
    def makespan_s(self) -> float:
        """The median total makespan: the sum over the routes of their makespan, per repeat."""
        return self.figure.median

    @property
    def figure(self) -> Figure:
        """The total makespan per repeat (the routes' makespans of repeat i, summed), as the reference's total.

        Routes with different repeat counts have no common repeat: then the sum of their medians, with the
        sum of their spreads.
        """
        counts = {len(r.repeats) for r in self.routes}
        if len(counts) == 1:
            totals = [sum(r.repeats[i].makespan_s for r in self.routes) for i in range(counts.pop())]
            return Figure(median=statistics.median(totals), low=min(totals), high=max(totals), samples=len(totals))
        median = sum(r.makespan_s for r in self.routes)
        spread = sum(r.spread_s for r in self.routes)
        samples = min((len(r.repeats) for r in self.routes), default=0)
        return Figure(median=median, low=median - spread / 2, high=median + spread / 2, samples=samples)


@dataclass(frozen=True, kw_only=True)
class AppRecommendation:
    """The profile to deploy the app under, as it is written now."""

    profile: str | None
    tied_with: tuple[str, ...]
    rejected: dict[str, str]
    reason: str
    rule: str = ""
    """How the winner was chosen, in words (empty in files written before the one rule)."""


@dataclass(frozen=True, kw_only=True)
class AppProbeRun:
    """A whole ``launch probe --app`` run."""

    app: str
    scenario_file: str
    demo_paths: tuple[str, ...]
    """Where the app mounts a Gradio demo (empty: none)."""
    profiles: tuple[AppProfileResult, ...]
    recommendation: AppRecommendation
    created: str = ""
    machine: dict[str, Any] = field(default_factory=dict)
    """As :func:`launcher.probe.machine.machine_info` (empty in a file of version 0)."""
    load: LoadDecision | None = None
    """With ``--target-rate``: every fit profile held at the user's rate, and the decision (as the reference's)."""


def server_key(profile: Profile) -> tuple[object, ...]:
    """What serving a user's app depends on: profiles equal here serve it identically."""
    return (profile.backend, profile.workers, profile.timeout, profile.host, profile.topology)


def dedupe(profiles: Sequence[Profile]) -> list[tuple[Profile, tuple[str, ...]]]:
    """The profiles to probe, each with the names of the later ones it stands for."""
    groups: dict[tuple[object, ...], tuple[Profile, list[str]]] = {}
    for profile in profiles:
        key = server_key(profile)
        if key in groups:
            groups[key][1].append(profile.name)
        else:
            groups[key] = (profile, [])
    return [(profile, tuple(names)) for profile, names in groups.values()]


def demo_path_of(endpoint: GradioEndpoint, index: int, shape: AppShape, app: AppSpec, scenario_path: Path) -> str:
    """The mount path the endpoint's clicks go to; :class:`AppProbeError` (one line) when none fits.

    Checked before any server starts, from what the app's check found: a click
    that cannot reach the demo is a usage error, never a route class.
    """
    where = f"{scenario_path}: gradio[{index}]"
    if not shape.demos:
        raise AppProbeError(
            f"{where}: {app.target} mounts no Gradio demo (none found by gr.mount_gradio_app in its routes): "
            "remove the [[gradio]] entry, or mount the demo"
        )
    if endpoint.path is not None:
        chosen = [d for d in shape.demos if d.path == endpoint.path.rstrip("/") or d.path == endpoint.path]
        if not chosen:
            found = ", ".join(shape.demo_paths)
            raise AppProbeError(f"{where}.path = {endpoint.path!r}: {app.target} mounts its demo at {found}")
        demo = chosen[0]
    elif len(shape.demos) > 1:
        found = ", ".join(shape.demo_paths)
        raise AppProbeError(f"{where}: {app.target} mounts several Gradio demos ({found}): say which with path = ...")
    else:
        demo = shape.demos[0]
    if demo.api_names and endpoint.api_name not in demo.api_names:
        raise AppProbeError(
            f"{where}.api_name = {endpoint.api_name!r}: the demo at {demo.path} has no such event "
            f"(its api names: {', '.join(demo.api_names)})"
        )
    return demo.path


def specs_of(entry: Burst | GradioEndpoint) -> list[RequestSpec]:
    """One scenario-file entry as the probe client's requests: an HTTP burst, or a demo's clicks."""
    if isinstance(entry, Burst):
        return [
            RequestSpec(
                kind=Kind.API,
                work=entry.label,
                path=entry.url_path,
                method=entry.method,
                json_body=entry.json_body,
                body_attribution=False,
            )
            for _ in range(entry.n)
        ]
    return [
        RequestSpec(kind=Kind.DEMO, work=entry.label, api_name=entry.api_name, args=tuple(entry.inputs))
        for _ in range(entry.n)
    ]


def _lag(server: ServerProcess, since: float, until: float) -> tuple[dict[int, float], dict[int, float]]:
    stall: dict[int, float] = {}
    blocked: dict[int, float] = {}
    for event in list(server.events):
        raw = event.fields.get(LAG_FIELD)
        worker = event.fields.get("WORKER", "")
        if raw is None or not worker.isdigit() or not since <= event.at <= until:
            continue
        worst, _, total = raw.partition(",")
        try:
            pid, worst_ms, total_ms = int(worker), float(worst), float(total)
        except ValueError:
            continue
        stall[pid] = max(stall.get(pid, 0.0), worst_ms)
        blocked[pid] = blocked.get(pid, 0.0) + total_ms
    return stall, blocked


def _fire(
    server: ServerProcess, profile: Profile, entry: Burst | GradioEndpoint, scenario_path: Path, index: int
) -> BurstFacts:
    pids = server.worker_pids_now()
    cpu_before = {pid: procs.cpu_seconds(pid) for pid in pids}
    since = time.monotonic()
    # A Gradio entry's clicks go to its demo's mount path (resolved before the run): gradio_client fetches
    # the demo's config there.
    base = server.url if isinstance(entry, Burst) else server.url + (entry.path or "").rstrip("/")
    records = asyncio.run(
        run_burst(base, specs_of(entry), timeout=entry.timeout, workers=profile.workers, health=False)
    )
    calls = [r for r in records if r.kind in (Kind.API, Kind.DEMO)]
    if isinstance(entry, Burst) and any(c.status == 404 for c in calls):
        raise AppProbeError(
            f"{scenario_path}: burst[{index}].path = {entry.path!r}: {entry.method} {entry.url_path} "
            f"answered 404 under {profile.name}: no such route in the app"
        )
    time.sleep(LAG_SETTLE_S)
    stall, blocked = _lag(server, since, time.monotonic())
    cpu: dict[int, float] = {}
    for pid, start in cpu_before.items():
        end = procs.cpu_seconds(pid)
        if start is not None and end is not None:
            cpu[pid] = end - start
    return BurstFacts(calls=tuple(calls), stall_ms=stall, blocked_ms=blocked, cpu_s=cpu)


def _route_result(entry: Burst | GradioEndpoint, verdicts: list[BurstVerdict]) -> RouteResult:
    name = overall_class(verdicts)
    request = f"{entry.method} {entry.url_path}" if isinstance(entry, Burst) else f"gradio {entry.api_name}"
    return RouteResult(
        route=entry.label,
        request=request,
        route_class=name,
        blocks_event_loop=any(v.route_class == BLOCKS for v in verdicts),
        longest_stall_ms=max(v.longest_stall_ms for v in verdicts),
        advice=QUEUE_SPLIT_ADVICE if any("queue_split" in v.errors for v in verdicts) else ADVICE[name],
        repeats=tuple(verdicts),
        n=entry.n,
    )


def probe_app_profile(
    profile: Profile,
    same_as: tuple[str, ...],
    app: AppSpec,
    scenario: ScenarioFile,
    scenario_path: Path,
    *,
    profiles_files: tuple[Path, ...] = (),
    say: Callable[[str], None] = lambda line: None,
) -> AppProfileResult:
    """Serve ``app`` under ``profile``, fire every burst, classify every route; never leaves it running."""
    server = ServerProcess(profile=profile, profiles_files=profiles_files, app=app, health_path=scenario.health)
    say(f"{profile.name}: starting {app.target}")
    try:
        server.start(timeout=scenario.health_timeout)
    except StartupError as exc:
        tail = " | ".join(server.log_tail(LOG_LINES).split(" | ")[-LOG_LINES:])
        server.cleanup()
        if "was not ready after" in str(exc):
            raise AppProbeError(
                f"{app.target} under {profile.name} did not answer GET {scenario.health} with 200 within "
                f"{scenario.health_timeout:g} s (health in {scenario_path}); last log lines: {tail}"
            ) from None
        raise AppProbeError(f"{app.target} under {profile.name} did not start: {exc}; last log lines: {tail}") from None
    routes: list[RouteResult] = []
    try:
        entries: list[tuple[int, Burst | GradioEndpoint]] = [*enumerate(scenario.burst), *enumerate(scenario.gradio)]
        for index, entry in entries:
            verdicts = []
            for repeat in range(entry.repeats):
                say(f"{profile.name}: {entry.label} ({entry.n} at once, repeat {repeat + 1}/{entry.repeats})")
                verdicts.append(classify_burst(_fire(server, profile, entry, scenario_path, index)))
            routes.append(_route_result(entry, verdicts))
    finally:
        stopped = server.stop()
        server.cleanup()
    return AppProfileResult(
        profile=profile.name,
        same_as=same_as,
        backend=profile.backend,
        workers=profile.workers,
        ready_seconds=round(server.ready_seconds, 3),
        routes=tuple(routes),
        stop_seconds=round(stopped.seconds, 3),
        stop_forced=stopped.forced,
        topology=profile.topology,
        server_processes=count_processes(server.pids, server.pid, profile.workers),
    )


def rejection(result: AppProfileResult, *, serves_demo: bool, failing_everywhere: set[str]) -> str | None:
    """Why ``result`` cannot be recommended (the reference's fitness rules, over routes), or None.

    ``failing_everywhere``: routes that fail under every profile (the code's own failure rejects none).
    """
    split = [r for r in result.routes for v in r.repeats if "queue_split" in v.errors]
    failing = [r for r in result.routes if r.route_class == FAILS and r.route not in failing_everywhere]
    if serves_demo and result.demo_processes > 1:
        # By structure, not by luck: clicks that happened to land in one process do not make the queue one.
        return (
            f"serves the Gradio demo from {result.demo_processes} processes, each with its own queue "
            "(a click's join and event stream can land in different ones)"
        )
    if split:
        return f"{split[0].route}: Gradio clicks split over {result.workers} worker processes"
    if failing:
        return f"{failing[0].route} fails under this profile only"
    if result.stop_forced:
        return FORCED_STOP
    return None


def candidates(results: Sequence[AppProfileResult], *, serves_demo: bool) -> list[Candidate]:
    """Each result as the one rule's :class:`~launcher.probe.recommend.Candidate`, with its :func:`rejection`."""
    failing_everywhere = (
        {
            route.route
            for route in results[0].routes
            if all(any(r.route == route.route and r.route_class == FAILS for r in p.routes) for p in results)
        }
        if results
        else set()
    )
    return [
        Candidate(
            name=r.profile,
            backend=r.backend,
            processes=r.processes,
            makespan=r.figure if r.routes else None,
            rejection=rejection(r, serves_demo=serves_demo, failing_everywhere=failing_everywhere),
        )
        for r in results
    ]


def qualifying(results: Sequence[AppProfileResult], *, serves_demo: bool) -> list[AppProfileResult]:
    """The results fit to serve the app (no :func:`rejection`): the only ones a load check holds."""
    found = candidates(results, serves_demo=serves_demo)
    return [r for r, c in zip(results, found, strict=True) if c.rejection is None]


def recommend(results: Sequence[AppProfileResult], *, serves_demo: bool = False) -> AppRecommendation:
    """The reference service's one rule (:func:`launcher.probe.recommend.choose`) over what a user's app showed.

    ``serves_demo``: the app mounts a Gradio demo, so a profile holding it in several processes never qualifies.
    """
    choice = choose(candidates(results, serves_demo=serves_demo))
    return AppRecommendation(
        profile=choice.best,
        tied_with=tuple(name for name in choice.tied if name != choice.best),
        rejected=choice.rejected,
        reason=choice.why,
        rule=choice.rule,
    )


def select_app_profiles(run: AppProbeRun, keep: set[str]) -> AppProbeRun:
    """The run narrowed to the profiles in ``keep``, in file order, its recommendation and load decided again."""
    profiles = tuple(p for p in run.profiles if p.profile in keep)
    cores = run.machine.get("cores")
    return dataclasses.replace(
        run,
        profiles=profiles,
        recommendation=recommend(profiles, serves_demo=bool(run.demo_paths)),
        load=narrow_load(run.load, keep, cores=cores if isinstance(cores, int) and cores > 0 else 1),
    )


def probe_app(
    profiles: Sequence[Profile],
    app: AppSpec,
    scenario: ScenarioFile,
    scenario_path: Path,
    *,
    shape: AppShape,
    profiles_files: tuple[Path, ...] = (),
    say: Callable[[str], None] = lambda line: None,
) -> AppProbeRun:
    """Probe ``app`` under each of ``profiles`` (deduplicated) with ``scenario``.

    ``shape`` is what the app's check found; every Gradio entry's demo is resolved
    from it before any server starts (:func:`demo_path_of`).
    """
    gradio = [
        entry.model_copy(update={"path": demo_path_of(entry, index, shape, app, scenario_path)})
        for index, entry in enumerate(scenario.gradio)
    ]
    scenario = scenario.model_copy(update={"gradio": gradio})
    results = [
        probe_app_profile(profile, same_as, app, scenario, scenario_path, profiles_files=profiles_files, say=say)
        for profile, same_as in dedupe(profiles)
    ]
    from launcher.probe.machine import machine_info

    return AppProbeRun(
        app=app.target,
        scenario_file=str(scenario_path),
        demo_paths=shape.demo_paths,
        profiles=tuple(results),
        recommendation=recommend(results, serves_demo=shape.serves_demo),
        created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        machine=machine_info(),
    )


def run_to_json(run: AppProbeRun) -> dict[str, Any]:
    """The run as JSON data (schema ``launch.appprobe``): each route carries ``class`` and ``blocks_event_loop``."""
    data: dict[str, Any] = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, **asdict(run)}
    for profile, result in zip(data["profiles"], run.profiles, strict=True):
        profile["makespan_s"] = round(result.makespan_s, 3)
        for route in profile["routes"]:
            route["class"] = route.pop("route_class")
            for repeat in route["repeats"]:
                repeat["class"] = repeat.pop("route_class")
    return data


@functools.cache
def _adapter() -> pydantic.TypeAdapter[AppProbeRun]:
    return pydantic.TypeAdapter(AppProbeRun)


def is_app_run(data: Any) -> bool:
    """Whether ``data`` (parsed JSON) is a ``launch probe --app`` result: by its header, or by its shape (version 0)."""
    if not isinstance(data, dict):
        return False
    if "schema" in data:
        return bool(data["schema"] == SCHEMA)
    return {"app", "scenario_file", "profiles", "recommendation"} <= set(data)


def run_from_json(data: Any) -> AppProbeRun:
    """Rebuild a run from :func:`run_to_json` output (or a headerless one of version 0); :class:`ResultFileError`."""
    if not is_app_run(data):
        raise ResultFileError(f'not a launch probe --app result (missing "schema": "{SCHEMA}")')
    version = data.get("schema_version", 0)
    if isinstance(version, bool) or not isinstance(version, int):
        raise ResultFileError("schema_version is not an integer")
    if version > SCHEMA_VERSION:
        raise ResultFileError(
            f"schema_version {version} is newer than this launch understands ({SCHEMA_VERSION}); upgrade launch"
        )
    body = {k: v for k, v in data.items() if k not in ("schema", "schema_version")}
    body.setdefault("demo_paths", [])  # files of version 0 written before demo_paths was recorded
    try:
        profiles = []
        for profile in body["profiles"]:
            routes = []
            for route in profile["routes"]:
                repeats = [
                    {"route_class": r["class"], **{k: v for k, v in r.items() if k != "class"}}
                    for r in route["repeats"]
                ]
                fields = {k: v for k, v in route.items() if k not in ("class", "repeats")}
                routes.append({**fields, "route_class": route["class"], "repeats": repeats})
            profiles.append({**{k: v for k, v in profile.items() if k != "makespan_s"}, "routes": routes})
        body["profiles"] = profiles
    except (KeyError, TypeError, AttributeError) as exc:
        raise ResultFileError(f"malformed launch probe --app result: missing or wrong {exc}") from None
    try:
        return _adapter().validate_json(json.dumps(body), strict=True)
    except pydantic.ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "the file"
        raise ResultFileError(f"malformed launch probe --app result: {where}: {first['msg']}") from None


def describe(route: RouteResult) -> str:
    """The class in words, with the longest stall when the loop was blocked."""
    text = LABELS[route.route_class]
    if route.route_class == BLOCKS:
        text += f" ({route.longest_stall_ms:.0f} ms stall)"
    if route.route_class == FAILS:
        errors = sorted({e for v in route.repeats for e in v.errors})
        text += f" ({', '.join(errors)})"
    return text


def print_stderr(line: str) -> None:
    """A progress line on stderr."""
    print(f"launch: {line}", file=sys.stderr, flush=True)
