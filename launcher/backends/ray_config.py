"""A profile as Ray Serve applications: one table, used by the ray backends and by ``launch serve-config``.

Pure data, no Ray import: ``launch serve-config`` writes it without Ray
installed, and the backends hand the same values to ``serve.run``. The shape
is the one ``serve deploy`` reads (``ray.serve.schema.ServeDeploySchema``):
``http_options`` plus one entry per application with its ``route_prefix``,
``import_path``, ``runtime_env`` and per-deployment options.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from profiles.model import SPLIT_API_PREFIX, SPLIT_BACKEND, SPLIT_DEMO_REPLICAS, Profile

IMPORT_PATH = "launcher.backends.ray_app:app"
"""The bound Serve application (``serve deploy`` and ``serve run`` import it on the cluster)."""
DEPLOYMENT_NAME = "launch"
"""The one deployment of every application (the reference service, built inside each replica)."""
SINGLE_APP = "launch"
DEMO_APP = "launch-demo"
API_APP = "launch-api"
CPU_UNIT = 1e-4
"""Ray accounts resources in fixed point (1/10000 of a CPU): a share is rounded down to it, so that three
replicas of 2/3 CPU add up to no more than 2 (0.6667 x 3 = 2.0001 would leave the third unscheduled)."""
SETTINGS_PREFIXES = ("LAUNCH_", "GRADIO_")
"""Environment variables a replica needs: the service's settings and Gradio's switches."""
LOCAL_ONLY_SETTINGS = frozenset({"LAUNCH_SUPERVISOR_PID"})
"""Settings a replica must not get: replicas are Ray's workers, children of the raylet, not of the launcher
(a worker with LAUNCH_SUPERVISOR_PID arms a parent-death signal and exits when its parent is someone else)."""


@dataclass(frozen=True, kw_only=True)
class ServeApp:
    """One Serve application of a profile."""

    name: str
    route_prefix: str
    replicas: int
    role: str
    """``service`` (everything), ``demo`` or ``api`` (the split topology's two halves)."""


def applications(profile: Profile) -> tuple[ServeApp, ...]:
    """The applications serving ``profile``: one, or the split topology's demo at ``/`` and API under ``/api``."""
    if profile.backend == SPLIT_BACKEND:
        return (
            ServeApp(name=DEMO_APP, route_prefix="/", replicas=SPLIT_DEMO_REPLICAS, role="demo"),
            ServeApp(name=API_APP, route_prefix=SPLIT_API_PREFIX, replicas=profile.workers, role="api"),
        )
    return (ServeApp(name=SINGLE_APP, route_prefix="/", replicas=profile.workers, role="service"),)


def replica_cpus(profile: Profile, cpus: float | None) -> float:
    """Each replica's CPU request: an equal share of ``cpus`` (at most 1), or 1 when the cluster is not known.

    Ray's default of 1 CPU per replica leaves a third replica unscheduled on a
    2-core machine (measured: the application never became ready). Ray's CPU
    is a scheduling unit, not a limit: a replica still uses any core free.
    """
    if cpus is None:
        return 1.0
    share = min(1.0, cpus / profile.processes)
    return max(CPU_UNIT, math.floor(share / CPU_UNIT) * CPU_UNIT)


def replica_env(environ: dict[str, str]) -> dict[str, str]:
    """The service's settings for a replica, from the launcher's environment."""
    return {
        key: value
        for key, value in environ.items()
        if key.startswith(SETTINGS_PREFIXES) and key not in LOCAL_ONLY_SETTINGS
    }


def deployment_options(profile: Profile, app: ServeApp, *, cpus: float | None) -> dict[str, Any]:
    """The deployment's options, as ``serve.deployment(...).options`` and the config file take them."""
    return {
        "name": DEPLOYMENT_NAME,
        "num_replicas": app.replicas,
        "max_ongoing_requests": profile.max_ongoing_requests,
        # Graceful stop: in-flight requests get the profile's timeout, as the other backends give.
        "graceful_shutdown_timeout_s": profile.timeout,
        "ray_actor_options": {"num_cpus": replica_cpus(profile, cpus)},
    }


def deploy_config(profile: Profile, *, env: dict[str, str], cpus: float | None = None) -> dict[str, Any]:
    """The config ``serve deploy`` accepts for ``profile`` (``ServeDeploySchema``'s shape)."""
    return {
        "proxy_location": "EveryNode",
        "http_options": {"host": profile.host, "port": profile.port},
        "applications": [
            {
                "name": app.name,
                "route_prefix": app.route_prefix,
                "import_path": IMPORT_PATH,
                "runtime_env": {"env_vars": dict(sorted(env.items()))},
                "deployments": [deployment_options(profile, app, cpus=cpus)],
            }
            for app in applications(profile)
        ],
    }
