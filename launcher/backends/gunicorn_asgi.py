"""gunicorn with its own ``asgi`` worker class (gunicorn >= 24), no uvicorn inside.

Everything else is the ``gunicorn`` backend: the same ``BaseApplication``,
the same arbiter in the launcher process, the same fd hand-over. The native
worker runs the ASGI lifespan itself (``asgi_lifespan``) and heartbeats the
arbiter from its event loop, so gunicorn's worker timeout means the same here
as with ``UvicornWorker``: a loop blocked past it gets the worker killed.
"""

from __future__ import annotations

from typing import Any

from launcher.backends import gunicorn
from launcher.backends.base import ServeSpec


class Backend(gunicorn.Backend):
    """gunicorn's native ASGI worker, embedded."""

    name = "gunicorn-asgi"

    def options(self, spec: ServeSpec) -> dict[str, Any]:
        """The gunicorn settings, with ``worker_class = "asgi"``."""
        return {
            # gunicorn's "asgi" worker class, unblocking the stop signals the
            # launcher's arbiter holds across each fork (see gunicorn_worker).
            **gunicorn.gunicorn_options(spec, worker_class="launcher.backends.gunicorn_worker.LaunchASGIWorker"),
            # "on", not gunicorn's "auto": the app loads its model and reports
            # readiness in its lifespan, so a lifespan that fails must stop
            # the server rather than let it serve without a model.
            "asgi_lifespan": "on",
        }
