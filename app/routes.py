"""The API routes: ``/test1``, ``/test2``, ``/generate``, ``/health`` and ``/ping``."""

# No ``from __future__ import annotations`` here: FastAPI reads these
# signatures at run time.

import base64
import os
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.responses import Response

from app.jobs import DEFAULT_PROMPT, DEFAULT_STEPS, Prompt, Seed, Steps, WorkJobs
from app.lab import register_lab
from app.pipeline import GeneratedImage
from app.runtime import Runtime
from app.work import Attribution


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
