"""The server backends, registered by name and imported lazily.

Each backend is one module of this package with the same shape: a
``Backend`` class implementing :class:`launcher.backends.base.Backend`.
Importing a server costs time and memory, so only the chosen one is imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from launcher.backends.base import Backend

# name -> module; the CLI's choices and profile validation both read this.
REGISTRY: dict[str, str] = {
    "uvicorn": "launcher.backends.uvicorn",
    "gunicorn": "launcher.backends.gunicorn",
    "hypercorn": "launcher.backends.hypercorn",
    "granian": "launcher.backends.granian",
    "gunicorn-asgi": "launcher.backends.gunicorn_asgi",
}
BACKEND_NAMES: tuple[str, ...] = tuple(REGISTRY)


def get_backend(name: str) -> Backend:
    """Import and instantiate the backend called ``name``."""
    try:
        module_name = REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown backend {name!r}: expected one of {', '.join(BACKEND_NAMES)}") from None
    module = importlib.import_module(module_name)
    backend: Backend = module.Backend()
    return backend
