"""launch's own ASGI app for the server conformance check (:mod:`launcher.probe.conformance`).

Served by a backend exactly as a profile serves an app (``launch --profile
BACKEND-1-sync --app launcher.probe.conformance_app:app``), it does on purpose
what Gradio's event stream does on every pass, in the same calls, and reports
what the server made of it:

- ``/polls``: Starlette's ``request.is_disconnected()`` (a ``receive()`` in an
  already-cancelled anyio scope), then a short ``asyncio.wait_for``, many times
  on a live request. A server may report a disconnect there (gunicorn 27's
  ``asgi`` worker marks the connection closed when that wait is cancelled), or
  let the cancellation escape its scope into the next await (granian 2.8's
  ``PyFutureAwaitable``, upstream issue 525).
- ``/stream``: an event stream written as Gradio's ``sse_stream`` is, for a few
  seconds; the client checks that it arrives whole.
- ``/leave``: a raw ASGI stream whose own ``receive()`` listener must see the
  client leave (``http.disconnect``, or a failed send).
- ``/hang``: a Starlette stream whose generator waits; when the client leaves,
  the request's work must end (its task cancelled, or its generator closed).
- ``/seen``: what ``/stream``, ``/leave`` and ``/hang`` recorded for a token (one worker
  serves every route, so the record is at hand).

It imports nothing of launch's: workers import it by name.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

PASS_WAIT_S = 0.01
"""Each pass waits this long for a message, as Gradio's stream waits on its queue (there: up to 10 s)."""
MAX_HANG_S = 4.0
"""``/leave`` and ``/hang`` end on their own after this, whatever the server does (the check waits 2 s for them
to see the client leave; past that the server's stop would wait for them)."""

_left: dict[str, str] = {}
"""``/leave``: token -> how the app learnt the client had gone."""
_ended: dict[str, str] = {}
"""``/hang``: token -> how the request's work ended (``cancelled``, ``closed``, ``ran out``)."""
_streams: dict[str, str] = {}
"""``/stream``: token -> how the stream ended, as the app saw it (a broken stream often cannot tell its client)."""


async def _one_pass(request: Request, queue: asyncio.Queue[int]) -> tuple[str, str] | None:
    """One pass of Gradio's event-stream loop; ``(problem, detail)`` when the server broke it, else None."""
    try:
        if await request.is_disconnected():
            return "false_disconnect", "is_disconnected() reported a disconnect on a live request"
        try:
            await asyncio.wait_for(queue.get(), timeout=PASS_WAIT_S)
        except TimeoutError:
            pass
    except asyncio.CancelledError as exc:
        # The client is still reading: nothing cancelled this request. The cancellation of is_disconnected()'s
        # own scope escaped it and hit the next await. Un-cancel, so the answer can still be sent.
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        return "stray_cancel", f"CancelledError outside its scope: {str(exc) or 'no message'}"[:300]
    return None


async def polls(request: Request) -> Response:
    """``/polls?n=N``: N passes on a live request; the first problem, with the pass it came at."""
    n = min(int(request.query_params.get("n", "200")), 2000)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(n):
        problem = await _one_pass(request, queue)
        if problem is not None:
            return JSONResponse({"passes": n, "at": index + 1, "problem": problem[0], "detail": problem[1]})
    return JSONResponse({"passes": n, "at": None, "problem": None, "detail": ""})


async def stream(request: Request) -> Response:
    """``/stream?seconds=S&interval=I&token=T``: events every I s for S s, each pass as Gradio's; ``done`` last.

    How it ended is recorded in ``_streams`` under T: a stream cancelled by the server often cannot send its error.
    """
    seconds = min(float(request.query_params.get("seconds", "5")), 30.0)
    interval = max(float(request.query_params.get("interval", "0.05")), 0.005)
    total = max(1, round(seconds / interval))
    token = request.query_params.get("token", "")

    async def events() -> AsyncIterator[str]:
        queue: asyncio.Queue[int] = asyncio.Queue()

        async def produce() -> None:
            for index in range(total):
                await asyncio.sleep(interval)
                queue.put_nowait(index)

        producer = asyncio.create_task(produce())
        sent = 0
        ended = "ended at the client's side"
        try:
            while sent < total:
                try:
                    if await request.is_disconnected():
                        ended = f"is_disconnected() reported a disconnect after {sent} message(s)"
                        return  # as Gradio: the client is gone, end the stream without a word
                    message = await asyncio.wait_for(queue.get(), timeout=1.0)
                except TimeoutError:
                    continue
                except BaseException as exc:  # as Gradio: any error becomes an event, and ends the stream
                    ended = f"{type(exc).__name__}: {exc}"[:300]
                    yield "data: " + json.dumps({"error": ended}) + "\n\n"
                    return
                sent += 1
                yield "data: " + json.dumps({"event": message}) + "\n\n"
            ended = "whole"
            yield "data: " + json.dumps({"done": sent}) + "\n\n"
        finally:
            _streams[token] = ended
            producer.cancel()

    return StreamingResponse(events(), media_type="text/event-stream")


async def leave(scope: Scope, receive: Receive, send: Send) -> None:
    """``/leave?token=T``: a raw ASGI stream; records in ``_left`` how the app learnt that the client left."""
    token = Request(scope).query_params.get("token", "")
    await receive()  # the (empty) request body
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})

    async def listen() -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                _left.setdefault(token, "receive() returned http.disconnect")
                return

    listener = asyncio.create_task(listen())
    deadline = time.monotonic() + MAX_HANG_S
    try:
        while not listener.done() and time.monotonic() < deadline:
            try:
                await send({"type": "http.response.body", "body": b"data: {}\n\n", "more_body": True})
            except Exception as exc:  # ASGI 2.4: a send after the client left may raise
                _left.setdefault(token, f"send() raised {type(exc).__name__}")
                return
            await asyncio.sleep(0.05)
        if not listener.done():
            await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        listener.cancel()


async def hang(request: Request) -> Response:
    """``/hang?token=T``: one event, then a wait; records in ``_ended`` how the request's work ended."""
    token = request.query_params.get("token", "")

    async def events() -> AsyncIterator[str]:
        how = "ran out"
        try:
            yield "data: {}\n\n"
            deadline = time.monotonic() + MAX_HANG_S
            while time.monotonic() < deadline:
                await asyncio.sleep(0.1)
                yield ": keep-alive\n\n"  # as Gradio's heartbeat: a send that fails once the client is gone
        except asyncio.CancelledError:
            how = "cancelled"
            raise
        except GeneratorExit:
            how = "closed"
            raise
        finally:
            _ended.setdefault(token, how)

    return StreamingResponse(events(), media_type="text/event-stream")


async def seen(request: Request) -> Response:
    """``/seen?token=T``: what ``/leave`` and ``/hang`` recorded for T (null: nothing yet)."""
    token = request.query_params.get("token", "")
    return JSONResponse({"left": _left.get(token), "ended": _ended.get(token), "stream": _streams.get(token)})


async def health(request: Request) -> Response:
    """Readiness."""
    return JSONResponse({"status": "ok"})


class _App:
    """Starlette for every route but ``/leave``, which is raw ASGI (its receive() is its own)."""

    def __init__(self) -> None:
        self.starlette = Starlette(
            routes=[
                Route("/polls", polls),
                Route("/stream", stream),
                Route("/hang", hang),
                Route("/seen", seen),
                Route("/health", health, methods=["GET", "POST"]),
            ]
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("path") == "/leave":
            await leave(scope, receive, send)
            return
        await self.starlette(scope, receive, send)


app = _App()
