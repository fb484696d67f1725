"""``launch serve-config --profile NAME``: the Ray Serve config file that ``serve deploy`` accepts.

How a probed profile moves onto a real (multi-node) Ray cluster: the
applications, route prefixes, replica counts, ``max_ongoing_requests`` and
the service's settings (as ``runtime_env.env_vars``), from the same table the
ray backends deploy from (:mod:`launcher.backends.ray_config`). Replicas ask
for 1 CPU each here (Ray's default): on a cluster the scheduler places them
by CPUs; ``launch`` itself gives equal fractions of a single machine's CPUs.

Written as JSON, which is YAML: ``serve deploy FILE`` reads it with its YAML
loader (``--format yaml`` writes block-style YAML when PyYAML is installed).
The cluster's Python environment needs this project installed (the
applications import ``launcher.backends.ray_app:app``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from launcher.cli._common import catalog_from, fail, fail_with
from launcher.errors import ExitCode, LaunchError
from profiles import Profile
from profiles.model import RAY_BACKENDS


def config_for(profile: Profile) -> dict[str, Any]:
    """The deploy config for ``profile``, with the settings its replicas read (no launcher-only ones)."""
    from app.settings import AppSettings
    from launcher.backends.ray_config import deploy_config

    settings = AppSettings(
        mode=profile.handler_mode,
        concurrency_limit=profile.concurrency_limit,
        limiter=profile.limiter,
        model=profile.model,
    )
    env = {**settings.to_env(), "GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_SHARE": "False"}
    return deploy_config(profile, env=env)


def ray_version() -> str:
    """The Ray version the manifest names: the one installed here (the version the profile was probed on)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ray")
    except PackageNotFoundError:
        fail("--kuberay names the Ray version installed here, and Ray is not: pip install -e '.[ray]'", ExitCode.USAGE)


def render(config: dict[str, Any], fmt: str) -> str:
    """``config`` as text in ``fmt`` (``json`` or ``yaml``)."""
    if fmt == "yaml":
        try:
            import yaml  # type: ignore[import-untyped]  # no stubs installed; only safe_dump is used
        except ImportError:
            fail("--format yaml needs PyYAML (pip install pyyaml); --format json is YAML too", ExitCode.USAGE)
        text: str = yaml.safe_dump(config, sort_keys=False)
        return text
    return json.dumps(config, indent=2) + "\n"


@click.command("serve-config")
@click.option("--profile", "profile_name", metavar="NAME", required=True, help="A ray or ray-split profile.")
@click.option(
    "-o", "--output", type=click.Path(path_type=Path, dir_okay=False), help="Write here (default: standard output)."
)
@click.option("--format", "fmt", type=click.Choice(["json", "yaml"]), default="json", show_default=True)
@click.option(
    "--kuberay",
    is_flag=True,
    help="Write a KubeRay RayService manifest (kubectl apply -f) that embeds the Serve config.",
)
@click.option("--image", metavar="IMAGE", help="With --kuberay: a container image with this project and Ray installed.")
@click.option("--name", metavar="NAME", help="With --kuberay: the RayService's name (default: the profile's).")
@click.pass_context
def serve_config(
    ctx: click.Context,
    profile_name: str,
    output: Path | None,
    fmt: str,
    kuberay: bool,
    image: str | None,
    name: str | None,
) -> None:
    """Write the Ray Serve config file (for `serve deploy`) of a ray profile.

    \b
    launch serve-config --profile ray-split-3-offload -o serve.json
    serve deploy serve.json        # on the cluster, with this project installed
    launch serve-config --profile ray-split-3-offload --kuberay --image REGISTRY/launch:TAG -o rayservice.json
    kubectl apply -f rayservice.json   # a cluster with the KubeRay operator
    """
    if not kuberay and (image is not None or name is not None):
        fail("--image and --name go with --kuberay", ExitCode.USAGE)
    if kuberay and image is None:
        fail("--kuberay needs --image IMAGE: a container image with this project and Ray installed", ExitCode.USAGE)
    try:
        profile = catalog_from(ctx).get_profile(profile_name)
    except LaunchError as exc:
        fail_with(exc)
    if profile.backend not in RAY_BACKENDS:
        fail(f"{profile.name} runs on {profile.backend}; serve-config is for the ray backends", ExitCode.USAGE)
    config = config_for(profile)
    if kuberay:
        from launcher import kuberay as kube

        assert image is not None
        try:
            config = kube.manifest(profile, config, image=image, ray_version=ray_version(), name=name)
        except LaunchError as exc:
            fail_with(exc)
    text = render(config, fmt)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text)
