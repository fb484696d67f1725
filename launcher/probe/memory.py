"""Will a profile fit in memory? An estimate from measured figures, checked before a probe starts.

A probe that starts three workers on a machine without the memory for them
ends in the OOM killer, minutes in. The estimate is resident memory (RSS) per
worker times workers, plus the launcher, from the bench's memory measure
(README, Performance, "6 memory": tiny pipeline loaded, 2026-11-27). RSS
counts the pages gunicorn's forked workers share with their arbiter once per
process, so for gunicorn the estimate errs on the safe side (its PSS was 978
MiB against 1595 MiB RSS at 3 workers). A larger model needs more: the
estimate is then a floor.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import psutil

from launcher.errors import ExitCode, LaunchError
from profiles.model import SPLIT_TOPOLOGY, Profile

SPAWNED_WORKER_MIB = 470
"""A uvicorn or hypercorn worker (spawned: imports everything itself): 461-466 MiB measured."""
GUNICORN_WORKER_MIB = 405
"""A gunicorn worker (forked from the arbiter): 405 MiB measured."""
GUNICORN_ARBITER_MIB = 385
"""gunicorn's arbiter imports torch and diffusers before forking: 381 MiB measured."""
SUPERVISOR_MIB = 45
"""uvicorn's or hypercorn's supervising launcher (29-31 MiB) and multiprocessing's resource tracker (13 MiB)."""
FRONT_MIB = 60
"""Caddy, the split topology's front, proxying a probe's bursts: an allowance (its RSS is a few tens of MiB)."""
AVAILABLE_ENV = "LAUNCH_MEMORY_AVAILABLE_MB"
"""Lowers the available memory the check uses (MiB); for tests, and to keep room for other work."""


class NotEnoughMemoryError(LaunchError):
    """A profile needs more memory than the machine has available."""

    exit_code = ExitCode.NOT_ENOUGH_MEMORY


@dataclass(frozen=True, kw_only=True)
class Estimate:
    """What one profile is expected to take, and how the figure was made."""

    profile: str
    mib: int
    how: str


def estimate(profile: Profile) -> Estimate:
    """Resident memory one served profile takes, from the measured per-process figures."""
    if profile.topology == SPLIT_TOPOLOGY:
        # N+1 model copies: the demo's uvicorn process and N single-worker API members, each as one served alone.
        member = estimate(profile.replace(topology="single", workers=1))
        n = profile.workers
        mib = SPAWNED_WORKER_MIB + n * member.mib + SUPERVISOR_MIB + FRONT_MIB
        how = (
            f"demo {SPAWNED_WORKER_MIB} MiB + {n} API members x {member.mib} MiB ({member.how}) + "
            f"{SUPERVISOR_MIB} MiB launcher + {FRONT_MIB} MiB caddy"
        )
        return Estimate(profile=profile.name, mib=mib, how=how)
    n = profile.workers
    if profile.backend == "gunicorn":
        mib = n * GUNICORN_WORKER_MIB + GUNICORN_ARBITER_MIB
        how = f"{n} x {GUNICORN_WORKER_MIB} MiB per worker + {GUNICORN_ARBITER_MIB} MiB arbiter"
    elif n == 1:
        # One uvicorn or hypercorn worker is served in the launcher's own process.
        mib = SPAWNED_WORKER_MIB
        how = f"1 worker in process, {SPAWNED_WORKER_MIB} MiB"
    else:
        mib = n * SPAWNED_WORKER_MIB + SUPERVISOR_MIB
        how = f"{n} x {SPAWNED_WORKER_MIB} MiB per worker + {SUPERVISOR_MIB} MiB launcher"
    return Estimate(profile=profile.name, mib=mib, how=how)


def available_mib() -> tuple[int, str]:
    """Memory available for new processes (MiB), and where the figure came from."""
    measured = int(psutil.virtual_memory().available // (1024 * 1024))
    raw = os.environ.get(AVAILABLE_ENV)
    if raw is None or not raw.strip():
        return measured, "available"
    try:
        limit = int(raw)
    except ValueError:
        raise LaunchError(f"{AVAILABLE_ENV} = {raw!r}: expected a whole number of MiB") from None
    if limit < measured:
        return limit, f"available ({AVAILABLE_ENV})"
    return measured, "available"


def check_fits(profiles: list[Profile]) -> None:
    """:class:`NotEnoughMemoryError` naming the first profile that does not fit; profiles run one at a time."""
    have, where = available_mib()
    for profile in profiles:
        need = estimate(profile)
        if need.mib > have:
            raise NotEnoughMemoryError(
                f"profile {need.profile} needs about {need.mib} MiB ({need.how}) but {have} MiB is {where}; "
                "--force runs it anyway"
            )
