"""The reference service: FastAPI routes with the Gradio demo mounted at ``/``.

Build it with :func:`create_app` (a factory: every server re-creates it in each
worker from ``LAUNCH_*`` variables). This module only composes: the work is in
:mod:`app.jobs`, the API routes in :mod:`app.routes`, the demo in :mod:`app.demo`.

Routes:

- ``GET /test1?seconds=S``: sleep-bound work (``time.sleep``).
- ``GET /test2?seconds=S``: CPU-bound pure-Python loop calibrated to last S s.
- ``GET /generate?prompt=&steps=&seed=&format=json|png``: one diffusers run.
- ``GET /health``: ``async``, never blocks.
"""

from __future__ import annotations

from fastapi import FastAPI

from app.jobs import WorkJobs
from app.routes import register_api
from app.runtime import Runtime
from app.settings import AppSettings


def create_app(settings: AppSettings | None = None) -> FastAPI:
    """Build the service for one worker from ``settings`` (default: ``LAUNCH_*`` variables)."""
    # Imported here: Gradio is only needed once a demo is mounted; and
    # without its IDE-stub writer, which costs a third of its import.
    from app.gradio_import import import_gradio

    gr = import_gradio()
    from app.demo import build_demo

    runtime = Runtime(settings or AppSettings.from_env())
    app = FastAPI(title="launch reference service", lifespan=runtime.lifespan)
    app.state.runtime = runtime
    register_api(app, runtime)
    demo = build_demo(runtime, WorkJobs(runtime))
    # Mounted at "/" as in the write-up; API routes were registered first, so
    # the mount does not hide them.
    mounted: FastAPI = gr.mount_gradio_app(app, demo, path="/", ssr_mode=False)
    return mounted
