"""A small FastAPI service with routes written the ways people write them, right and wrong.

``launch probe --app examples.shop:app --scenarios examples/shop.toml --profiles 'uvicorn-1-*,gunicorn-3-*'``
tells which is which from outside. Each route stands for a real handler: "work" is a blocking client call
(``time.sleep``), a non-blocking one (``asyncio.sleep``), or a pure-Python computation.
"""

from __future__ import annotations

import asyncio
import time

from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI(title="example shop")
_one_at_a_time = asyncio.Lock()


class Quote(BaseModel):
    """A price request."""

    items: int = 1
    seconds: float = 0.3


@app.get("/health")
async def health() -> dict[str, str]:
    """Liveness: answers at once."""
    return {"status": "ok"}


@app.get("/lookup-blocking")
async def lookup_blocking(seconds: float = 0.3) -> dict[str, float]:
    """WRONG: ``async def`` calling a blocking client: the whole worker stops while it waits."""
    time.sleep(seconds)
    return {"waited": seconds}


@app.get("/lookup-threaded")
def lookup_threaded(seconds: float = 0.3) -> dict[str, float]:
    """Right: plain ``def`` around a blocking call runs in the server's thread pool."""
    time.sleep(seconds)
    return {"waited": seconds}


@app.get("/lookup-async")
async def lookup_async(seconds: float = 0.3) -> dict[str, float]:
    """Right: ``async def`` awaiting a non-blocking call."""
    await asyncio.sleep(seconds)
    return {"waited": seconds}


@app.post("/quote")
async def quote(body: Quote) -> dict[str, float]:
    """Serialized on purpose (one at a time per process, e.g. a single connection): correct, not concurrent."""
    async with _one_at_a_time:
        await asyncio.sleep(body.seconds)
    return {"items": body.items, "price": 9.5 * body.items}


@app.get("/score")
def score(seconds: float = 0.3) -> dict[str, int]:
    """CPU-bound pure Python in ``def``: threads, but one GIL: requests share one core per worker."""
    deadline = time.thread_time() + seconds
    count = 0
    while time.thread_time() < deadline:
        count += sum(i * i for i in range(1000)) % 7
    return {"score": count}


@app.get("/broken")
async def broken() -> dict[str, str]:
    """WRONG: raises on every call (a 500)."""
    raise RuntimeError("the inventory service is not configured")
