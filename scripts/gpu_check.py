"""One short check of ``/generate`` on CUDA, for a machine with a GPU.

It serves the reference API routes (the real ``register_api`` and the real
lifespan that loads the pipeline; the Gradio demo is left out so that only
FastAPI, uvicorn and diffusers need to be installed) with uvicorn on
127.0.0.1, then sends real HTTP requests: one warm-up, one timed generation
of 20 steps, and three at once to see them serialized by the per-process
lock. Exits non-zero if the pipeline is not on CUDA or anything fails.

    python scripts/gpu_check.py [--json OUT]
"""

from __future__ import annotations

import argparse
import itertools
import json
import socket
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    """Run the check; 0 when /generate ran on CUDA with generations serialized."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import torch
    import uvicorn
    from fastapi import FastAPI

    from app.routes import register_api
    from app.runtime import Runtime
    from app.settings import AppSettings, HandlerMode

    report: dict[str, Any] = {"cuda_available": torch.cuda.is_available(), "torch": torch.__version__}
    if torch.cuda.is_available():
        report["gpu"] = torch.cuda.get_device_name(0)
    runtime = Runtime(AppSettings(mode=HandlerMode.OFFLOAD, cpu_rate=1e7))
    app = FastAPI(lifespan=runtime.lifespan)
    register_api(app, runtime)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    started = time.monotonic()
    thread.start()

    def get(path: str) -> dict[str, Any]:
        with urllib.request.urlopen(url + path, timeout=120) as response:
            body: dict[str, Any] = json.loads(response.read())
            return body

    try:
        while True:
            try:
                health = get("/health")
                break
            except OSError:
                if time.monotonic() - started > 300:
                    raise
                time.sleep(0.2)
        report["ready_seconds"] = round(time.monotonic() - started, 2)
        report["device"] = health["device"]
        get("/generate?steps=2&seed=0")
        t = time.monotonic()
        one = get("/generate?steps=20&seed=1")
        report["one_20_steps_s"] = round(time.monotonic() - t, 3)
        report["pipeline_s"] = round(one["pipeline_seconds"], 3)
        report["image"] = f"{one['width']}x{one['height']}"
        with ThreadPoolExecutor(3) as pool:
            t = time.monotonic()
            three = list(pool.map(lambda i: get(f"/generate?steps=20&seed={i}"), range(3)))
            report["three_at_once_s"] = round(time.monotonic() - t, 3)
        spans = sorted((r["pipeline_start_ns"], r["pipeline_end_ns"]) for r in three)
        report["serialized"] = all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    ok = report.get("device") == "cuda" and report.get("serialized") is True
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
