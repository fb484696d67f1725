"""The image-generation model: a real diffusers pipeline, loaded once per worker.

No weights can be downloaded, so the default model is a tiny Stable Diffusion
pipeline built from configs (random weights, 64 px). It is written to a cache
folder with ``save_pretrained`` once and then always loaded with
``from_pretrained`` -- the code path a real model takes. Any local diffusers
pipeline folder can be served instead (``LAUNCH_MODEL=/path``).

torch and diffusers are imported inside the functions: importing them costs
seconds, and only the worker's lifespan should pay it, never an import of
``app``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TINY_MODEL = "tiny"
NO_MODEL = "none"
IMAGE_SIZE = 64

# Offline by construction: a hub lookup must fail fast rather than hang.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


class ModelLoadError(RuntimeError):
    """The configured model could not be found or loaded."""


def cache_root() -> Path:
    """Where the tiny pipeline is kept: ``LAUNCH_CACHE_DIR``, systemd's ``CACHE_DIRECTORY``, or XDG."""
    for var in ("LAUNCH_CACHE_DIR", "CACHE_DIRECTORY"):
        value = os.environ.get(var)
        if value:
            return Path(value.split(":")[0])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "launch"


def tiny_model_dir() -> Path:
    """The folder the tiny pipeline is saved to and loaded from."""
    return cache_root() / "tiny-sd-64"


def import_libraries() -> None:
    """Import torch, diffusers and transformers' CLIP now (seconds of work).

    A server that forks its workers (gunicorn) calls this in the master so the
    imports are shared copy-on-write instead of repeated in every worker. It
    only imports: no model is loaded and torch starts no threads here.
    """
    import torch  # noqa: F401
    from diffusers import DiffusionPipeline, StableDiffusionPipeline  # noqa: F401
    from transformers import CLIPTextModel, CLIPTokenizer  # noqa: F401


def _bytes_to_unicode() -> dict[int, str]:
    # CLIP's byte-level alphabet: every byte maps to a printable character.
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


def _tiny_vocab() -> dict[str, int]:
    vocab: dict[str, int] = {}
    for ch in _bytes_to_unicode().values():
        vocab[ch] = len(vocab)
    for ch in _bytes_to_unicode().values():
        vocab[ch + "</w>"] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return vocab


def build_tiny_pipeline(target: Path) -> Path:
    """Create the tiny pipeline from configs and save it to ``target`` (atomically).

    Several workers may start at once: each builds into a private temporary
    folder and renames it into place; the first rename wins and the others
    discard their copy, so a reader never sees a half-written model.
    """
    import torch
    from diffusers import (
        AutoencoderKL,
        PNDMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(0)
    vocab = _tiny_vocab()
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(vocab),
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            bos_token_id=vocab["<|startoftext|>"],
            eos_token_id=vocab["<|endoftext|>"],
            pad_token_id=vocab["<|endoftext|>"],
        )
    )
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=IMAGE_SIZE // 2,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        norm_num_groups=32,
    )
    vae = AutoencoderKL(
        block_out_channels=(32, 64),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        norm_num_groups=32,
        sample_size=IMAGE_SIZE,
    )
    scheduler = PNDMScheduler(skip_prk_steps=True, steps_offset=1)
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".tiny-sd-", dir=target.parent))
    try:
        pipe.save_pretrained(scratch)  # type: ignore[attr-defined]
        try:
            os.rename(scratch, target)
        except OSError:
            if not (target / "model_index.json").is_file():
                raise
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)
    return target


def resolve_model_path(model: str) -> Path:
    """Turn a model setting into a folder, building the tiny pipeline on first use."""
    if model == TINY_MODEL:
        target = tiny_model_dir()
        if not (target / "model_index.json").is_file():
            build_tiny_pipeline(target)
        return target
    path = Path(model).expanduser()
    if not (path / "model_index.json").is_file():
        raise ModelLoadError(f"model path {str(path)!r} is not a diffusers pipeline folder (no model_index.json)")
    return path


@dataclass(frozen=True, kw_only=True)
class GeneratedImage:
    """One generation: the image and how long the pipeline call took."""

    png: bytes
    width: int
    height: int
    pipeline_seconds: float
    pipeline_start_ns: int
    """When the pipeline call began, inside the per-process lock (monotonic ns)."""
    pipeline_end_ns: int


class ImageModel:
    """A loaded pipeline with its per-process guard.

    A diffusers pipeline is not thread-safe (concurrent calls corrupt the
    scheduler's step state and fail with HTTP 500), so every call holds one
    lock per process whatever the handler mode.
    """

    def __init__(self, pipeline: Any, *, device: str, source: str) -> None:
        self._pipeline = pipeline
        self._lock = threading.Lock()
        self.device = device
        self.source = source

    @classmethod
    def load(cls, model: str) -> ImageModel:
        """Load ``model`` (``tiny`` or a local folder) onto CUDA when available, else CPU."""
        path = resolve_model_path(model)
        import torch
        from diffusers import DiffusionPipeline
        from diffusers.utils import logging as diffusers_logging
        from transformers.utils import logging as transformers_logging

        # Progress bars are noise in a server log.
        diffusers_logging.disable_progress_bar()
        transformers_logging.disable_progress_bar()

        device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cpu":
            # One intra-op thread per worker by default: several workers (or a
            # busy machine) with torch's default of one OpenMP thread per core
            # oversubscribe the cores, and spinning OpenMP threads then made
            # a 0.26 s generation take 4-8 s here.
            torch.set_num_threads(int(os.environ.get("LAUNCH_TORCH_THREADS", "1")))
        try:
            pipeline = DiffusionPipeline.from_pretrained(str(path), local_files_only=True)
        except Exception as exc:  # diffusers raises many types; the message is what matters
            raise ModelLoadError(f"could not load model from {str(path)!r}: {exc}") from exc
        pipeline = pipeline.to(device)
        pipeline.set_progress_bar_config(disable=True)
        return cls(pipeline, device=device, source=str(path))

    def generate(self, *, prompt: str, steps: int, seed: int) -> GeneratedImage:
        """Run the pipeline once, serialized per process, and return a PNG."""
        import io

        import torch

        with self._lock:
            start_ns = time.monotonic_ns()
            generator = torch.Generator(device=self.device).manual_seed(seed)
            result = self._pipeline(
                prompt,
                num_inference_steps=steps,
                generator=generator,
                output_type="pil",
            )
            end_ns = time.monotonic_ns()
        image = result.images[0]
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return GeneratedImage(
            png=buffer.getvalue(),
            width=image.width,
            height=image.height,
            pipeline_seconds=(end_ns - start_ns) / 1e9,
            pipeline_start_ns=start_ns,
            pipeline_end_ns=end_ns,
        )
