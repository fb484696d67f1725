"""``launch serve-config --kuberay``: a KubeRay RayService manifest embedding the profile's Serve config.

No Kubernetes here: the embedded Serve config is checked by Ray's own schema (``ServeDeploySchema``), and the
manifest's structure by the fields the ``ray.io/v1`` RayService CRD declares and requires (KubeRay's
``ray.io_rayservices.yaml``: no package here ships it, so the parts this manifest uses are stated below).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from launcher import kuberay
from launcher.backends.ray_config import applications
from launcher.cli import main
from launcher.errors import ConfigError, ExitCode
from tests.conftest import builtin

IMAGE = "registry.example/launch:1.0"

# The CRD's declared properties (and required ones) for the parts this manifest writes, ray.io/v1.
SPEC_KEYS = {"rayClusterConfig", "serveConfigV2", "serviceUnhealthySecondThreshold", "upgradeStrategy"}
CLUSTER_KEYS = {"rayVersion", "headGroupSpec", "workerGroupSpecs", "enableInTreeAutoscaling"}
HEAD_KEYS = {"rayStartParams", "template", "serviceType", "headService", "enableIngress"}
WORKER_KEYS = {"groupName", "replicas", "minReplicas", "maxReplicas", "rayStartParams", "template", "numOfHosts"}
WORKER_REQUIRED = {"groupName", "minReplicas", "maxReplicas", "template"}


def _manifest(name: str, tmp_path: Path, *extra: str) -> dict[str, Any]:
    out = tmp_path / "rayservice.json"
    result = CliRunner().invoke(
        main, ["serve-config", "--profile", name, "--kuberay", "--image", IMAGE, "-o", str(out), *extra]
    )
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(out.read_text())
    return data


@pytest.mark.parametrize("name", ["ray-1-sync", "ray-3-offload", "ray-split-3-offload"])
def test_the_manifest_embeds_the_serve_config_rays_schema_accepts(name: str, tmp_path: Path) -> None:
    from importlib.metadata import version

    from ray.serve.schema import ServeDeploySchema

    doc = _manifest(name, tmp_path)
    assert (doc["apiVersion"], doc["kind"]) == ("ray.io/v1", "RayService")
    assert doc["metadata"]["name"] == name
    spec = doc["spec"]
    assert set(spec) <= SPEC_KEYS and "rayClusterConfig" in spec
    serve = ServeDeploySchema.model_validate(json.loads(spec["serveConfigV2"]))
    # The pods' proxies must take traffic from KubeRay's Service, not only from loopback.
    assert (serve.http_options.host, serve.http_options.port) == ("0.0.0.0", kuberay.SERVE_PORT)
    profile = builtin(name)
    replicas = {app.name: int(str(app.deployments[0].num_replicas)) for app in serve.applications}
    assert replicas == {app.name: app.replicas for app in applications(profile)}
    cluster = spec["rayClusterConfig"]
    assert set(cluster) <= CLUSTER_KEYS and cluster["rayVersion"] == version("ray")
    head = cluster["headGroupSpec"]
    assert set(head) <= HEAD_KEYS and "template" in head
    assert head["rayStartParams"]["num-cpus"] == "0"  # no replica on the head
    (group,) = cluster["workerGroupSpecs"]
    assert set(group) <= WORKER_KEYS and set(group) >= WORKER_REQUIRED
    # A pod per replica, the split's one demo replica included: the group is not autoscaled past it.
    assert group["replicas"] == group["minReplicas"] == group["maxReplicas"] == sum(replicas.values())
    containers = [*head["template"]["spec"]["containers"], *group["template"]["spec"]["containers"]]
    for container in containers:
        assert container["image"] == IMAGE and container["name"]
        assert container["resources"]["requests"] == container["resources"]["limits"]
    ports = {p["name"]: p["containerPort"] for p in head["template"]["spec"]["containers"][0]["ports"]}
    assert ports == {"gcs-server": 6379, "dashboard": 8265, "client": 10001, "serve": 8000}


def test_a_split_profiles_demo_stays_one_replica(tmp_path: Path) -> None:
    serve = json.loads(_manifest("ray-split-3-offload", tmp_path)["spec"]["serveConfigV2"])
    counts = {app["name"]: app["deployments"][0]["num_replicas"] for app in serve["applications"]}
    assert counts == {"launch-demo": 1, "launch-api": 3}
    assert {app["name"]: app["route_prefix"] for app in serve["applications"]} == {
        "launch-demo": "/",
        "launch-api": "/api",
    }


def test_a_name_of_ones_own(tmp_path: Path) -> None:
    assert _manifest("ray-1-sync", tmp_path, "--name", "shop-prod")["metadata"]["name"] == "shop-prod"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--profile", "ray-1-sync", "--kuberay"], "--kuberay needs --image IMAGE"),
        (["--profile", "ray-1-sync", "--image", IMAGE], "--image and --name go with --kuberay"),
        (["--profile", "ray-1-sync", "--kuberay", "--image", IMAGE, "--name", "Shop_Prod"], "a Kubernetes name"),
        (["--profile", "uvicorn-1-sync", "--kuberay", "--image", IMAGE], "serve-config is for the ray backends"),
    ],
)
def test_what_cannot_make_a_manifest_is_one_line_with_exit_2(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["serve-config", *args])
    assert result.exit_code == ExitCode.USAGE, result.output
    (line,) = result.output.strip().splitlines()
    assert message in line


@pytest.mark.parametrize("bad", ["", "-shop", "shop-", "a" * 64, "shop.prod"])
def test_kubernetes_names(bad: str) -> None:
    with pytest.raises(ConfigError, match="a Kubernetes name"):
        kuberay.resource_name(builtin("ray-1-sync"), bad)
