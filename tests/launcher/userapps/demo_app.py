"""A user app as a new user writes one: a FastAPI API with its Gradio demo mounted under a sub-path."""

from __future__ import annotations

import time

import gradio as gr
from fastapi import FastAPI

api = FastAPI()


@api.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@api.get("/predict")
def predict_api(text: str = "hi") -> dict[str, str]:
    time.sleep(0.1)
    return {"echo": text}


def echo(text: str) -> str:
    time.sleep(0.2)  # long enough that three clicks overlap in one queue
    return text


with gr.Blocks() as demo:
    box = gr.Textbox()
    out = gr.Textbox()
    gr.Button().click(echo, box, out, api_name="echo")

app = gr.mount_gradio_app(api, demo, path="/demo")

root_api = FastAPI()
root_app = gr.mount_gradio_app(root_api, demo, path="/")
"""The same demo at the root."""
