"""The machine a run measured on: cores, CPU model, Python and the versions of what was measured.

Part of every result file, and what ``launch compare`` checks to tell two machines apart.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
from typing import Any

MEASURED_PACKAGES: tuple[str, ...] = (
    "uvicorn",
    "gunicorn",
    "hypercorn",
    "granian",
    "uvicorn-worker",
    "fastapi",
    "gradio",
    "torch",
    "diffusers",
)


def cpu_model() -> str | None:
    """The CPU's model name (``/proc/cpuinfo``), None where it cannot be read.

    Part of what ``launch compare`` checks to tell two machines apart.
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "cpu model"):
                    return value.strip() or None
    except OSError:
        return None
    return None


def machine_info(packages: tuple[str, ...] = MEASURED_PACKAGES) -> dict[str, Any]:
    """Cores, Python and the versions of ``packages`` (None: not installed)."""
    versions: dict[str, str | None] = {}
    for package in packages:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cores": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
    }
