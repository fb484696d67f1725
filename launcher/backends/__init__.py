"""The server backends, registered by name and imported lazily.

Each backend is one module of this package with the same shape: a
``Backend`` class implementing :class:`launcher.backends.base.Backend`.
Importing a server costs time and memory, so only the chosen one is imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from profiles.model import BACKEND_NAMES

__all__ = ["BACKEND_NAMES", "REGISTRY", "get_backend"]

if TYPE_CHECKING:
    from launcher.backends.base import Backend

# name -> module: one module per name profiles accept, named after it ("-" becomes "_").
REGISTRY: dict[str, str] = {name: f"launcher.backends.{name.replace('-', '_')}" for name in BACKEND_NAMES}


def get_backend(name: str) -> Backend:
    """Import and instantiate the backend called ``name``."""
    try:
        module_name = REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown backend {name!r}: expected one of {', '.join(BACKEND_NAMES)}") from None
    module = importlib.import_module(module_name)
    backend: Backend = module.Backend()
    return backend
