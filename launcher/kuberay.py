"""``launch serve-config --kuberay``: a ray profile's Serve config inside a KubeRay ``RayService`` manifest.

How a probed profile moves onto a Kubernetes cluster: the KubeRay operator
runs a Ray cluster from ``spec.rayClusterConfig`` and deploys
``spec.serveConfigV2`` (the Serve config ``launch serve-config`` writes, as
text) onto it. One head pod that runs no replicas (``num-cpus: "0"``, as
KubeRay's production guide advises: a head under load fails the whole
cluster), and one worker group with a pod per Serve replica, each with the
CPU its replica asks for. A split profile's demo replica is one pod and stays
one replica, wherever Kubernetes places it: the Serve config fixes it.

Pure data: no Kubernetes client and no Ray import. The image must contain this
project (the applications import ``launcher.backends.ray_app:app``) and the
Ray version named in ``rayVersion``. Checked against the ``ray.io/v1``
``RayService`` schema of KubeRay's CRD by the tests where that file is
available; its structure always.
"""

from __future__ import annotations

import json
import re
from typing import Any

from launcher.errors import ConfigError
from profiles.model import Profile

API_VERSION = "ray.io/v1"
KIND = "RayService"
SERVE_PORT = 8000
"""Where Serve's proxy listens in each pod; KubeRay's serve Service targets this port."""
RAY_PORTS: tuple[tuple[str, int], ...] = (("gcs-server", 6379), ("dashboard", 8265), ("client", 10001))
POD_MEMORY = "2Gi"
"""Each pod's memory request and limit: a starting point for the reference service's tiny model (a replica used
about 470 MiB here); set it for your model."""
HEAD_CPU = "1"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
NAME_MAX = 63
"""A Kubernetes object name (RFC 1123 label): KubeRay derives Service names from it."""


def resource_name(profile: Profile, name: str | None) -> str:
    """The manifest's ``metadata.name``: ``name``, else the profile's name lower-cased.

    :class:`ConfigError` when it is not a valid Kubernetes name.
    """
    chosen = name if name is not None else profile.name.lower().replace("_", "-").replace(".", "-")
    if len(chosen) > NAME_MAX or not _NAME.match(chosen):
        raise ConfigError(
            f"--name {chosen!r}: a Kubernetes name is at most {NAME_MAX} characters of a-z, 0-9 and '-', "
            "starting and ending with a letter or digit"
        )
    return chosen


def _cpus(value: float) -> str:
    # Kubernetes quantities: whole CPUs as integers, fractions in millicores.
    return str(int(value)) if float(value).is_integer() else f"{round(value * 1000)}m"


def manifest(
    profile: Profile, serve_config: dict[str, Any], *, image: str, ray_version: str, name: str | None = None
) -> dict[str, Any]:
    """The ``RayService`` for ``profile`` deploying ``serve_config`` (``launch serve-config``'s), as JSON data."""
    if not image.strip():
        raise ConfigError("--image: empty; expected a container image with this project and Ray installed")
    config = {**serve_config, "http_options": {"host": "0.0.0.0", "port": SERVE_PORT}}
    deployments = [d for app in config["applications"] for d in app["deployments"]]
    replicas = sum(int(d["num_replicas"]) for d in deployments)
    cpus = max(float(d["ray_actor_options"]["num_cpus"]) for d in deployments)
    resources = {"cpu": _cpus(cpus), "memory": POD_MEMORY}
    head_resources = {"cpu": HEAD_CPU, "memory": POD_MEMORY}
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": resource_name(profile, name), "labels": {"app.kubernetes.io/managed-by": "launch"}},
        "spec": {
            # Serve's deploy schema, as text: KubeRay reads it as YAML, and JSON is YAML.
            "serveConfigV2": json.dumps(config, indent=2),
            "rayClusterConfig": {
                "rayVersion": ray_version,
                "headGroupSpec": {
                    # No replicas on the head: KubeRay's production advice (a busy head fails the cluster).
                    "rayStartParams": {"dashboard-host": "0.0.0.0", "num-cpus": "0"},
                    "template": {
                        "spec": {
                            "containers": [
                                {
                                    "name": "ray-head",
                                    "image": image,
                                    "ports": [
                                        *({"name": port_name, "containerPort": port} for port_name, port in RAY_PORTS),
                                        {"name": "serve", "containerPort": SERVE_PORT},
                                    ],
                                    "resources": {"requests": head_resources, "limits": head_resources},
                                }
                            ]
                        }
                    },
                },
                "workerGroupSpecs": [
                    {
                        # One pod per Serve replica (the demo's included): each replica gets its CPU.
                        "groupName": "replicas",
                        "replicas": replicas,
                        "minReplicas": replicas,
                        "maxReplicas": replicas,
                        "rayStartParams": {},
                        "template": {
                            "spec": {
                                "containers": [
                                    {
                                        "name": "ray-worker",
                                        "image": image,
                                        "resources": {"requests": resources, "limits": resources},
                                    }
                                ]
                            }
                        },
                    }
                ],
            },
        },
    }
