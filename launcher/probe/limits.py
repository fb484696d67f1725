"""The probe's bounds and defaults, defined once (the CLI reads them without importing the engine)."""

from __future__ import annotations

from profiles.model import RAY_BACKENDS, SPLIT_TOPOLOGY, Profile

MAX_REQUESTS = 1000
"""N: concurrent requests per burst, at most (the load a probe generates is bounded)."""
MAX_REPEATS = 20
DEFAULT_REPEATS = 2
"""Every burst twice by default: a median and a spread for every figure, at the cost of the bursts' time."""
OPT_IN_BACKENDS: tuple[str, ...] = tuple(sorted(RAY_BACKENDS))
"""Backends whose profiles a default ``launch probe`` leaves out: each start brings up a Ray instance."""
OPT_IN_TOPOLOGIES: tuple[str, ...] = (SPLIT_TOPOLOGY,)
"""Topologies whose profiles a default ``launch probe`` leaves out: a split start runs N+1 servers and Caddy, and
the default run with them has not been measured inside its time budget yet."""


def in_default_run(profile: Profile) -> bool:
    """Whether a ``launch probe`` without ``--profiles`` probes ``profile`` (the opt-in ones are probed when named)."""
    return profile.backend not in OPT_IN_BACKENDS and profile.topology not in OPT_IN_TOPOLOGIES
