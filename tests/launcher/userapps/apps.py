"""User apps for the tests: a minimal good one, a factory, and bad ones."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

not_an_app = 42


def factory() -> FastAPI:
    """A factory that builds the good app."""
    return make()


def factory_raises() -> FastAPI:
    """A factory that fails the way a misconfigured one does."""
    raise ValueError("MODEL_PATH is missing")


def make() -> FastAPI:
    """A tiny app with a health route and one route."""
    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    return app


app = make()
no_health = FastAPI()


@no_health.get("/")
async def root() -> dict[str, Any]:
    """The only route: /health is a 404 here."""
    return {}


async def bare(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A bare ASGI callable: it lists no routes (the launcher cannot know them), and only /hello is a 200."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    found = scope["path"] == "/hello"
    await send({"type": "http.response.start", "status": 200 if found else 404, "headers": []})
    await send({"type": "http.response.body", "body": b"hello" if found else b"not found"})
