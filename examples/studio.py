"""A FastAPI service with its Gradio demo under a sub-path, as Gradio's guide mounts one.

``launch probe --app examples.studio:app --scenarios examples/studio.toml --profiles PROFILES`` probes it;
under a split profile the front sends ``/demo`` and everything under it to the one demo process and the API's
routes to the API group (docs/split.md).
"""

from __future__ import annotations

import time

import gradio as gr
from fastapi import FastAPI

api = FastAPI(title="example studio")


@api.get("/health")
async def health() -> dict[str, str]:
    """Liveness: answers at once."""
    return {"status": "ok"}


@api.get("/caption")
def caption(seconds: float = 0.3) -> dict[str, float]:
    """A blocking client call in a plain ``def``: the server runs it in its thread pool."""
    time.sleep(seconds)
    return {"waited": seconds}


def echo(text: str) -> str:
    """The demo's one event: long enough that several clicks overlap in its queue."""
    time.sleep(0.2)
    return text


with gr.Blocks() as demo:
    box = gr.Textbox(label="text")
    out = gr.Textbox(label="echo")
    gr.Button("echo").click(echo, box, out, api_name="echo")

app = gr.mount_gradio_app(api, demo, path="/demo")
