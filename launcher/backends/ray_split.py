"""The split topology on Ray Serve: the Gradio demo in one replica at ``/``, the API in N replicas under ``/api``.

One port, one proxy, two Serve applications routed by prefix. Every demo
click meets the one Gradio queue there is (its queue join and its event
stream reach the same replica), while API work runs on several processes at
once: the one multi-process set-up where both hold. See
:mod:`launcher.backends.ray` for the rest (start, readiness, clean-up).
"""

from __future__ import annotations

from launcher.backends.base import ServeSpec
from launcher.backends.ray import RayServe, expected_reports


class Backend:
    """Ray Serve, split: a demo application and an API application behind one proxy."""

    name = "ray-split"
    binds_own_socket = True
    expected_reports = staticmethod(expected_reports)

    def serve(self, spec: ServeSpec) -> None:
        """Serve ``spec.profile`` as two applications until SIGINT or SIGTERM."""
        RayServe(spec).run()
