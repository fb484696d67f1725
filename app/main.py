"""The reference service: FastAPI routes with the Gradio demo mounted at ``/``.

Build it with :func:`create_app` (a factory: every server re-creates it in each
worker from ``LAUNCH_*`` variables).

Routes:

- ``GET /test1?seconds=S``: sleep-bound work (``time.sleep``).
- ``GET /test2?seconds=S``: CPU-bound pure-Python loop calibrated to last S s.
- ``GET /generate?prompt=&steps=&seed=&format=json|png``: one diffusers run.
- ``GET /health``: ``async``, never blocks.
"""

# No ``from __future__ import annotations`` here: FastAPI reads these
# signatures at run time, through handlers built in another module.

import base64
import os
import threading
import time
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import Response

from app.pipeline import GeneratedImage
from app.runtime import Runtime
from app.settings import MAX_PROMPT_CHARS, MAX_SECONDS, MAX_STEPS, AppSettings
from app.work import Attribution, spin

DEFAULT_SECONDS = 10.0
DEFAULT_STEPS = 4
DEFAULT_PROMPT = "a lighthouse at dusk"

Seconds = Annotated[float, Query(ge=0, le=MAX_SECONDS, description="How long the work lasts.")]
Steps = Annotated[int, Query(ge=1, le=MAX_STEPS, description="Denoising steps.")]
Seed = Annotated[int, Query(ge=0, le=2**32 - 1)]
Prompt = Annotated[str, Query(min_length=1, max_length=MAX_PROMPT_CHARS)]


class WorkJobs:
    """The three kinds of work as jobs: validate, then return the blocking thunk."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def sleep(self, seconds: Seconds = DEFAULT_SECONDS) -> Callable[[], float]:
        """Sleep-bound work: ``time.sleep(seconds)``."""

        def thunk() -> float:
            time.sleep(seconds)
            return seconds

        return thunk

    def cpu(self, seconds: Seconds = DEFAULT_SECONDS) -> Callable[[], float]:
        """CPU-bound work: a pure-Python loop calibrated to last ``seconds`` alone."""
        iterations = int(seconds * self.runtime.cpu_rate)

        def thunk() -> float:
            spin(iterations)
            return seconds

        return thunk

    def generate(
        self,
        prompt: Prompt = DEFAULT_PROMPT,
        steps: Steps = DEFAULT_STEPS,
        seed: Seed = 0,
    ) -> Callable[[], GeneratedImage]:
        """Image generation with the worker's diffusers pipeline."""
        model = self.runtime.model
        if model is None:
            raise HTTPException(status_code=503, detail="no model is loaded in this worker (model = none)")

        def thunk() -> GeneratedImage:
            return model.generate(prompt=prompt, steps=steps, seed=seed)

        return thunk


def _work_response(seconds: float, attribution: Attribution) -> dict[str, Any]:
    return {"seconds": seconds, **attribution.to_dict()}


def _attribution_headers(attribution: Attribution) -> dict[str, str]:
    return {f"x-launch-{k.replace('_', '-')}": str(v) for k, v in attribution.to_dict().items()}


def register_api(app: FastAPI, runtime: Runtime) -> None:
    """Add the API routes; they must exist before the demo is mounted at ``/``."""
    jobs = WorkJobs(runtime)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        """Liveness: answers at once unless this worker's event loop is blocked."""
        model = runtime.model
        answer: dict[str, Any] = {
            "status": "ok",
            "model": model.source if model else None,
            "device": model.device if model else None,
        }
        if runtime.settings.attribution:
            # Worker internals, for the probe only: a deployment does not expose them.
            answer |= {
                "pid": os.getpid(),
                "mode": runtime.settings.mode.value,
                "in_flight": runtime.in_flight.count,
                "now_ns": time.monotonic_ns(),
            }
        return answer

    @app.get("/ping")
    async def ping(attribution: bool = False) -> dict[str, Any]:
        """The cheapest route, for load generators; ``attribution=true`` adds who answered (when enabled)."""
        if not (attribution and runtime.settings.attribution):
            return {"pong": True}
        return {
            "pong": True,
            "pid": os.getpid(),
            "thread": threading.get_ident(),
            "mode": runtime.settings.mode.value,
            "now_ns": time.monotonic_ns(),
        }

    app.get("/test1", summary="Sleep-bound work")(
        runtime.handler(jobs.sleep, work="sleep", kind="api", finish=_work_response)
    )
    app.get("/test2", summary="CPU-bound work")(
        runtime.handler(jobs.cpu, work="cpu", kind="api", finish=_work_response)
    )

    def generate_job(
        prompt: Prompt = DEFAULT_PROMPT,
        steps: Steps = DEFAULT_STEPS,
        seed: Seed = 0,
        format: Literal["json", "png"] = "json",  # noqa: A002 - the query parameter's public name
    ) -> Callable[[], tuple[GeneratedImage, dict[str, Any]]]:
        thunk = jobs.generate(prompt=prompt, steps=steps, seed=seed)
        request = {"prompt": prompt, "steps": steps, "seed": seed, "format": format}

        def run() -> tuple[GeneratedImage, dict[str, Any]]:
            return thunk(), request

        return run

    def generate_response(
        done: tuple[GeneratedImage, dict[str, Any]], attribution: Attribution
    ) -> Response | dict[str, Any]:
        image, request = done
        if request["format"] == "png":
            return Response(image.png, media_type="image/png", headers=_attribution_headers(attribution))
        return {
            "image_png_base64": base64.b64encode(image.png).decode(),
            "width": image.width,
            "height": image.height,
            "steps": request["steps"],
            "seed": request["seed"],
            "pipeline_seconds": image.pipeline_seconds,
            "pipeline_start_ns": image.pipeline_start_ns,
            "pipeline_end_ns": image.pipeline_end_ns,
            **attribution.to_dict(),
        }

    app.get("/generate", summary="Image generation", response_model=None)(
        runtime.handler(generate_job, work="generate", kind="api", finish=generate_response)
    )
    if runtime.settings.lab:
        register_lab(app)


async def lab_answer() -> dict[str, Any]:
    """An async helper, as a model call often is."""
    return {"ok": True}


def register_lab(app: FastAPI) -> None:
    """Lab routes that reproduce the write-up's mistakes on purpose (``LAUNCH_LAB=1`` only)."""

    @app.get("/lab/noawait", summary="An async function called without await")
    def lab_noawait() -> Any:
        # The write-up's mistake: the coroutine is returned, never awaited.
        return lab_answer()


def create_app(settings: AppSettings | None = None) -> FastAPI:
    """Build the service for one worker from ``settings`` (default: ``LAUNCH_*`` variables)."""
    # Imported here: Gradio is only needed once a demo is mounted.
    import gradio as gr

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
