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
