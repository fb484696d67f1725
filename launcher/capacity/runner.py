"""Run a capacity sweep: start each profile, hold rising arrival rates, narrow on the knee, stop it.

One profile at a time, each a ``launch --profile`` child in its own process
group (:class:`launcher.child.ServerProcess`: ready via the notify socket once
every worker loaded its model), always on 127.0.0.1 whatever the profile's
host says: the load never leaves this machine. Between steps the server is
given time to work off whatever the previous step left in its handlers.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from launcher import interrupts
from launcher.capacity.engine import StepRun, open_loop, settle
from launcher.capacity.gpu import BusySampler, Gpu, open_gpu
from launcher.capacity.model import (
    CapacityRun,
    ProfileCapacity,
    SearchPolicy,
    StepResult,
    knee,
    next_rate,
    size,
)
from launcher.child import ServerProcess
from launcher.errors import ConfigError, StartupError
from launcher.probe.machine import machine_info as probe_machine_info
from launcher.probe.model import Status
from launcher.userapp import AppShape, AppSpec
from launcher.userapp import check as check_app
from profiles.model import Profile

ROUTES = ("/generate", "/test1", "/test2", "/ping")
"""Paths of the reference service a sweep may load (with any query)."""
FASTAPI_DOC_PATHS = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})
ROUTES_LISTED = 12
"""How many of the app's routes a wrong ``--route`` lists."""
NOT_A_ROUTE = (404, 405)
"""What a server answers for a path it does not route, or routes for another method (the sweep sends GETs)."""


class RouteError(ConfigError):
    """``--route`` names no GET route of the app: known from its route list before any start, else at the first step."""


@dataclass(frozen=True, kw_only=True)
class CapacityTarget:
    """A profile to sweep and the file it came from (None: built in)."""

    profile: Profile
    source: Path | None = None


@dataclass(frozen=True, kw_only=True)
class CapacityOptions:
    """What to send and when to stop."""

    route: str = "/generate"
    target_s: float = 2.0
    step_seconds: float = 5.0
    policy: SearchPolicy = field(default_factory=SearchPolicy)
    target_rate: float | None = None
    timeout_s: float | None = None
    """Per request; default ``max(4 x target, target + 5 s)``: long enough to see how far a miss went."""
    start_timeout: float = 180.0
    idle_timeout: float = 60.0
    app: AppSpec | None = None
    """The user's app instead of the reference service: then ``route`` is any GET path of it."""

    def __post_init__(self) -> None:
        if self.app is None and self.path not in ROUTES:
            raise ConfigError(f"--route {self.route!r}: expected one of {', '.join(ROUTES)} (with any query)")
        if not self.route.startswith("/"):
            raise ConfigError(f"--route {self.route!r}: expected a path starting with /")
        if not 0 < self.step_seconds <= 300:
            raise ConfigError(f"--step-seconds {self.step_seconds:g}: expected 0 < s <= 300")

    @property
    def path(self) -> str:
        """The route without its query."""
        return self.route.split("?", 1)[0]

    @property
    def request_timeout(self) -> float:
        """The per-request timeout in seconds."""
        return self.timeout_s if self.timeout_s is not None else max(4 * self.target_s, self.target_s + 5.0)

    def to_json(self) -> dict[str, Any]:
        """The options as recorded in the result file."""
        return {
            "route": self.route,
            "p99_target_s": self.target_s,
            "step_seconds": self.step_seconds,
            "start_rate": self.policy.start,
            "factor": self.policy.factor,
            "max_rate": self.policy.max_rate,
            "bisections": self.policy.bisections,
            "target_rate": self.target_rate,
            "request_timeout_s": self.request_timeout,
            "app": self.app.target if self.app is not None else None,
        }


def machine_info(gpu: Gpu | None, gpu_text: str) -> dict[str, Any]:
    """Cores, GPU, Python and the versions of what is measured."""
    return {
        **probe_machine_info(("uvicorn", "gunicorn", "hypercorn", "aiohttp", "torch", "diffusers", "nvidia-ml-py")),
        "load_average": os.getloadavg(),
        "gpu": gpu.name if gpu else None,
        "gpu_memory_mib": gpu.memory_mib if gpu else None,
        "gpu_note": gpu_text,
    }


def sweep_profile(
    target: CapacityTarget,
    options: CapacityOptions,
    *,
    gpu: Gpu | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> ProfileCapacity:
    """Start the profile, run the knee search on it, stop it. Ctrl-C returns what was measured, ``interrupted``."""
    profile = target.profile.replace(host="127.0.0.1")
    server = ServerProcess(
        profile=profile,
        profiles_files=(target.source,) if target.source else (),
        env={"GRADIO_ANALYTICS_ENABLED": "False"},
        log_level="warning",
        app=options.app,
    )
    source = str(target.source) if target.source else None
    progress(f"{profile.name}: starting")
    history: list[tuple[float, bool]] = []
    steps: list[StepResult] = []
    status = Status.OK
    error: str | None = None
    gpu_memory: dict[str, float] = {}
    try:
        try:
            server.start(timeout=options.start_timeout)
        except StartupError as exc:
            server.cleanup()
            return ProfileCapacity(
                profile=profile,
                source=source,
                status=Status.DID_NOT_START,
                workers=profile.workers,
                error=str(exc),
            )
        progress(f"{profile.name}: ready in {server.ready_seconds:.1f} s at {server.url}")
        if gpu is not None:
            gpu_memory = gpu.process_memory_mib(server.worker_pids_now())
        while (rate := next_rate(history, options.policy)) is not None:
            progress(f"{profile.name}: {rate:g}/s for {options.step_seconds:g} s")
            sampler = BusySampler(gpu=gpu) if gpu is not None else None
            with sampler or contextlib.nullcontext():
                run = interrupts.run(
                    open_loop(
                        # A user's app is served whole; the reference service's API is under a split's prefix (Ray's).
                        server.url + (profile.api_prefix if options.app is None else "") + options.route,
                        rate,
                        options.step_seconds,
                        timeout=options.request_timeout,
                        target_s=options.target_s,
                    )
                )
            step = run.summary(
                rate=rate,
                seconds=options.step_seconds,
                target_s=options.target_s,
                worker_pids=server.worker_pids_now(),
                gpu_busy=sampler.mean if sampler is not None else None,
                gpu_memory_mib=gpu.process_memory_mib(server.worker_pids_now()) if gpu is not None else None,
            )
            if not steps:
                check_answers(run, options.route, profile.name)
            steps.append(step)
            history.append((rate, step.passed))
            progress(f"{profile.name}: {rate:g}/s {'PASS' if step.passed else 'MISS'}: {step.why}")
            if not server.alive():
                status, error = Status.DIED, f"the server stopped during the {rate:g}/s step: {server.cause()}"
                break
            note = settle(
                server.url,
                run,
                workers=profile.workers,
                in_flight_known=options.app is None,
                request_timeout=options.request_timeout,
                idle_timeout=options.idle_timeout,
            )
            if note is not None:
                progress(f"{profile.name}: {note}")
            interrupts.raise_if_stopped()
    except KeyboardInterrupt:
        status = Status.INTERRUPTED
    finally:
        with interrupts.shielded():
            interrupts.hold("stop")
            server.stop()
        server.cleanup()
    found = knee(history)
    return ProfileCapacity(
        profile=profile,
        source=source,
        status=status,
        workers=profile.workers,
        ready_seconds=server.ready_seconds,
        pids=server.pids,
        steps=tuple(steps),
        knee=found,
        capped=bool(history) and all(ok for _, ok in history) and found is not None,
        error=error,
        gpu_memory_mib=gpu_memory,
    )


def check_answers(run: StepRun, route: str, profile: str) -> None:
    """A user's app that lists no routes (a bare ASGI callable): its first step's answers are the route check.

    :class:`RouteError` when every answer was a 404 or a 405 (the load sends GETs).
    """
    if run.samples and all(sample.status in NOT_A_ROUTE for sample in run.samples):
        raise RouteError(
            f"--route {route}: {profile} answered HTTP {run.samples[0].status} to GET {route.split('?', 1)[0]} "
            "(the load sends GETs to a route of the app)"
        )


def check_route(app: AppSpec, route: str, shape: AppShape | None = None) -> None:
    """Before any server starts: ``app`` loads, and serves ``route`` if it lists its routes.

    An app that lists none (a bare ASGI callable) is judged by its first answers instead (:func:`sweep_profile`).
    ``shape``: what checking the app found already (else it is checked here). Raises
    :class:`launcher.userapp.AppLoadError` or :class:`RouteError`.
    """
    shape = shape if shape is not None else check_app(app)
    path = route.split("?", 1)[0]
    if shape.routes_known and not shape.has_route(path):
        # The app's own routes first: FastAPI adds its documentation's before them.
        paths = sorted(shape.api_paths, key=lambda p: p in FASTAPI_DOC_PATHS)
        listed = ", ".join(paths[:ROUTES_LISTED]) + (", ..." if len(paths) > ROUTES_LISTED else "")
        raise RouteError(f"--route {route}: {app.target} has no route {path} (its routes: {listed or 'none'})")


def run_capacity(
    targets: Sequence[CapacityTarget],
    options: CapacityOptions,
    *,
    progress: Callable[[str], None] = lambda _: None,
    on_profile: Callable[[CapacityRun], None] | None = None,
) -> CapacityRun:
    """Sweep every target in turn; after Ctrl-C the run holds what was measured, marked incomplete.

    ``on_profile`` gets the run so far, marked incomplete, after every
    profile: the checkpoint to save.
    """
    if options.app is not None:
        check_route(options.app, options.route)
    created = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    gpu, gpu_text = open_gpu()
    progress(gpu_text if gpu is None else f"GPU: {gpu_text}")
    machine = machine_info(gpu, gpu_text)
    results: list[ProfileCapacity] = []
    try:
        for target in targets:
            interrupts.raise_if_stopped()
            result = sweep_profile(target, options, gpu=gpu, progress=progress)
            results.append(result)
            if result.status == Status.INTERRUPTED:
                break
            if on_profile is not None:
                on_profile(_run(created, machine, options, results, complete=False))
    except KeyboardInterrupt:
        pass  # between profiles, or while a checkpoint was written: what was measured is in ``results``
    finally:
        if gpu is not None:
            gpu.close()
    # A stop signal at any point makes the run incomplete, even one that landed while a server was stopped.
    complete = interrupts.stopped() is None and all(r.status != Status.INTERRUPTED for r in results)
    return _run(created, machine, options, results, complete=complete)


def _run(
    created: str, machine: dict[str, Any], options: CapacityOptions, results: list[ProfileCapacity], *, complete: bool
) -> CapacityRun:
    sizing = (
        size(
            results,
            target_rate=options.target_rate,
            cores=int(machine["cores"]),
            gpu_memory_mib=machine["gpu_memory_mib"],
        )
        if options.target_rate
        else None
    )
    return CapacityRun(
        created=created,
        machine=machine,
        options=options.to_json(),
        profiles=tuple(results),
        sizing=sizing,
        complete=complete,
    )
