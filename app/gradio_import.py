"""Import Gradio without its type-stub writer.

At import, every Gradio component class runs ``create_or_modify_pyi``
(``gradio.component_meta``): it reads the component's source file, parses it
with ``ast`` and rewrites the ``.pyi`` stub next to it in site-packages when it
differs. The stubs are for an IDE; serving never reads them. Measured here
(2 cores, gradio 6.31): ``import gradio`` used 4.1-4.4 s of CPU, 2.8-3.6 s
without the stub writer, and under ``cProfile`` ``create_or_modify_pyi`` was
10.4 of its 14.3 s. Skipping it also stops a server from writing into its
own virtual environment (read-only under the systemd unit anyway).

The served app is the same: only that one function becomes a no-op, for the
classes Gradio creates while it is imported and later (custom components).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

_META = "gradio.component_meta"
_STUB_WRITER = "create_or_modify_pyi"


def _no_stubs(*_args: Any, **_kwargs: Any) -> None:
    """Stand-in for Gradio's stub writer: serving needs no ``.pyi`` files."""


def _patch(module: ModuleType) -> None:
    # Only a function of the expected name is replaced: if a Gradio release
    # renames it, nothing breaks, the stubs are just written again.
    if callable(getattr(module, _STUB_WRITER, None)):
        setattr(module, _STUB_WRITER, _no_stubs)


class _StubWriterFinder(importlib.abc.MetaPathFinder):
    """Finds ``gradio.component_meta`` as usual and patches it right after it runs, before any component exists."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != _META:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        original = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            original(module)
            _patch(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def skip_stub_writing() -> None:
    """Make Gradio's stub writer a no-op, whether or not Gradio is imported yet (idempotent)."""
    module = sys.modules.get(_META)
    if module is not None:
        _patch(module)
        return
    if not any(isinstance(finder, _StubWriterFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _StubWriterFinder())


def import_gradio() -> ModuleType:
    """``import gradio``, without the stub writer."""
    skip_stub_writing()
    import gradio

    return gradio
