"""The three kinds of work as jobs, with the defaults and query limits the API and the demo share."""

# No ``from __future__ import annotations`` here: FastAPI reads these
# signatures (the Annotated query types) at run time.

import time
from collections.abc import Callable
from typing import Annotated

from fastapi import HTTPException, Query

from app.pipeline import GeneratedImage
from app.runtime import Runtime
from app.settings import MAX_PROMPT_CHARS, MAX_SECONDS, MAX_STEPS
from app.work import spin

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
