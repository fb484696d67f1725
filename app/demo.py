"""The Gradio demo: the same three kinds of work as the API, one button each.

Each click goes through Gradio's queue, whose per-event ``concurrency_limit``
comes from the profile; the API routes do not pass through that queue. The
``api_name`` of each event is stable (``sleep``, ``cpu``, ``generate``) so
``gradio_client`` can click them by name.
"""

# No ``from __future__ import annotations``: Gradio inspects these signatures.

import io
from collections.abc import Callable
from typing import Any

import gradio as gr
from PIL import Image

from app.jobs import DEFAULT_PROMPT, DEFAULT_STEPS, WorkJobs
from app.lab import lab_answer
from app.pipeline import GeneratedImage
from app.runtime import Runtime
from app.settings import MAX_PROMPT_CHARS, MAX_SECONDS, MAX_STEPS
from app.work import Attribution

# The demo's default is short; the write-up's 10 s stays the API default.
DEMO_SECONDS = 1.0


def _checked_seconds(value: float | None) -> float:
    if value is None or not 0 <= float(value) <= MAX_SECONDS:
        raise gr.Error(f"seconds must be between 0 and {MAX_SECONDS:g}, got {value!r}")
    return float(value)


def _work_output(seconds: float, attribution: Attribution) -> dict[str, Any]:
    return {"seconds": seconds, **attribution.to_dict()}


def _image_output(image: GeneratedImage, attribution: Attribution) -> tuple[Image.Image, dict[str, Any]]:
    return Image.open(io.BytesIO(image.png)), {
        "pipeline_seconds": image.pipeline_seconds,
        "pipeline_start_ns": image.pipeline_start_ns,
        "pipeline_end_ns": image.pipeline_end_ns,
        **attribution.to_dict(),
    }


def build_demo(runtime: Runtime, jobs: WorkJobs) -> gr.Blocks:
    """The Blocks demo, with handlers in the runtime's mode."""
    settings = runtime.settings

    def sleep_job(seconds: float) -> Callable[[], float]:
        return jobs.sleep(_checked_seconds(seconds))

    def cpu_job(seconds: float) -> Callable[[], float]:
        return jobs.cpu(_checked_seconds(seconds))

    def generate_job(prompt: str, steps: float, seed: float) -> Callable[[], GeneratedImage]:
        if not prompt or len(prompt) > MAX_PROMPT_CHARS:
            raise gr.Error(f"prompt must have 1 to {MAX_PROMPT_CHARS} characters")
        if not 1 <= int(steps) <= MAX_STEPS:
            raise gr.Error(f"steps must be between 1 and {MAX_STEPS}, got {steps!r}")
        try:
            return jobs.generate(prompt=prompt, steps=int(steps), seed=int(seed))
        except Exception as exc:  # HTTPException from the API job: show it in the demo
            raise gr.Error(str(getattr(exc, "detail", exc))) from exc

    limit = settings.concurrency_limit
    with gr.Blocks(title="launch reference service", analytics_enabled=False) as demo:
        gr.Markdown(
            f"### launch reference service\nmode `{settings.mode.value}`, "
            f"concurrency_limit {limit}, offload limiter {settings.limiter}"
        )
        with gr.Row():
            seconds = gr.Number(value=DEMO_SECONDS, label="seconds", minimum=0, maximum=MAX_SECONDS)
        with gr.Row():
            button1 = gr.Button("button1: sleep")
            button2 = gr.Button("button2: CPU")
        work_out = gr.JSON(label="attribution")
        with gr.Row():
            prompt = gr.Textbox(value=DEFAULT_PROMPT, label="prompt", max_length=MAX_PROMPT_CHARS)
            steps = gr.Slider(1, MAX_STEPS, value=DEFAULT_STEPS, step=1, label="steps")
            seed = gr.Number(value=0, label="seed", precision=0, minimum=0)
        button3 = gr.Button("button3: generate")
        image_out = gr.Image(label="image", type="pil")
        image_info = gr.JSON(label="generation")

        button1.click(
            runtime.handler(sleep_job, work="sleep", kind="demo", finish=_work_output),
            inputs=[seconds],
            outputs=[work_out],
            api_name="sleep",
            concurrency_limit=limit,
        )
        button2.click(
            runtime.handler(cpu_job, work="cpu", kind="demo", finish=_work_output),
            inputs=[seconds],
            outputs=[work_out],
            api_name="cpu",
            concurrency_limit=limit,
        )
        button3.click(
            runtime.handler(generate_job, work="generate", kind="demo", finish=_image_output),
            inputs=[prompt, steps, seed],
            outputs=[image_out, image_info],
            api_name="generate",
            concurrency_limit=limit,
        )
        if settings.lab:
            # The write-up's mistake in a demo handler: an async function called
            # without await, its coroutine handed to Gradio as the two outputs.
            def lab_noawait() -> Any:
                return lab_answer()  # never awaited: the mistake under study

            lab_button = gr.Button("lab: async call without await")
            lab_button.click(
                lab_noawait,
                outputs=[work_out, image_info],
                api_name="lab_noawait",
                concurrency_limit=limit,
            )
    built: gr.Blocks = demo
    return built
