"""Lab routes that reproduce the write-up's mistakes on purpose (``LAUNCH_LAB=1`` only, never in a deployment)."""

from typing import Any

from fastapi import FastAPI


async def lab_answer() -> dict[str, Any]:
    """An async helper, as a model call often is."""
    return {"ok": True}


def register_lab(app: FastAPI) -> None:
    """Add ``/lab/noawait``: a handler that calls an async function without await."""

    @app.get("/lab/noawait", summary="An async function called without await")
    def lab_noawait() -> Any:
        # The write-up's mistake: the coroutine is returned, never awaited.
        return lab_answer()
