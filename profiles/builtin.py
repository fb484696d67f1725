"""The built-in profiles: every backend x workers {1, 3} x mode (7 backends: 42), and 3 of the split topology."""

from __future__ import annotations

from app.settings import MODES
from profiles.model import (
    BACKEND_NAMES,
    DEFAULT_TIMEOUT,
    RAY_BACKENDS,
    SPLIT_API_PREFIX,
    SPLIT_BACKEND,
    SPLIT_TOPOLOGY,
    Profile,
)

BUILTIN_WORKERS: tuple[int, ...] = (1, 3)
SPLIT_BUILTINS: tuple[tuple[str, int, str], ...] = (
    ("gunicorn", 3, "offload"),
    ("uvicorn", 3, "offload"),
    # granian's worker breaks Gradio's event streams (README); in the split the demo runs on uvicorn instead.
    ("granian", 3, "sync"),
)
"""(backend, workers, mode) of the built-in split-topology profiles, named ``split-BACKEND-WORKERS-MODE``: a few
rather than the whole matrix, since each start runs N+1 servers and Caddy."""

_MODE_NOTES = {
    "sync": "def handlers in the thread pool",
    "async": "async def handlers that block the event loop",
    "offload": "async def handlers offloading to a thread under a limiter",
}


def builtin_profiles() -> dict[str, Profile]:
    """Name -> profile for the built-in matrix, named ``BACKEND-WORKERS-MODE``.

    A backend name may hold '-' (``gunicorn-asgi``): split a name from the right.
    """
    profiles: dict[str, Profile] = {}
    for backend in BACKEND_NAMES:
        for workers in BUILTIN_WORKERS:
            for mode in MODES:
                name = f"{backend}-{workers}-{mode}"
                noun = "worker" if workers == 1 else "workers"
                if backend in RAY_BACKENDS:
                    noun = "replica" if workers == 1 else "replicas"
                what = f"{backend}, {workers} {noun}"
                if backend == SPLIT_BACKEND:
                    what = f"ray-split, demo in 1 replica at /, API in {workers} {noun} under {SPLIT_API_PREFIX}"
                profiles[name] = Profile(
                    name=name,
                    backend=backend,
                    workers=workers,
                    timeout=DEFAULT_TIMEOUT,
                    mode=mode,
                    description=f"{what}, {_MODE_NOTES[mode]}",
                )
    for backend, workers, mode in SPLIT_BUILTINS:
        name = f"split-{backend}-{workers}-{mode}"
        profiles[name] = Profile(
            name=name,
            backend=backend,
            workers=workers,
            timeout=DEFAULT_TIMEOUT,
            mode=mode,
            topology=SPLIT_TOPOLOGY,
            description=(
                f"split behind Caddy: demo in 1 uvicorn process, API in {workers} {backend} servers, "
                f"{_MODE_NOTES[mode]}"
            ),
        )
    return profiles
