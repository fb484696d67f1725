"""The server conformance check against real servers on 127.0.0.1, over real HTTP: a correct one, and shims
that break it the ways gunicorn 27's asgi worker and a foreign app do."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from starlette.applications import Starlette

from launcher.asgi import DisconnectRelay
from launcher.probe.conformance import check_url
from launcher.probe.conformance_app import Message, Receive, Scope, Send, app
from launcher.probe.model import CheckOutcome, ConformanceCheck
from launcher.server import bind_socket, url_of

pytestmark = pytest.mark.e2e  # real servers (in a thread: no process, but seconds each)


class FalseDisconnectAfterCancel:
    """gunicorn 27.0.1's asgi worker, in miniature: a ``receive()`` cancelled while it waits marks the
    connection closed (its ``BodyReceiver._wait_for_disconnect`` ends in ``finally: self._closed = True``),
    so every later ``receive()`` answers ``http.disconnect`` on a live connection."""

    def __init__(self, inner: object) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)  # type: ignore[operator]
            return
        closed = False

        async def broken_receive() -> Message:
            nonlocal closed
            if closed:
                return {"type": "http.disconnect"}
            try:
                return await receive()
            except asyncio.CancelledError:
                closed = True  # the defect: a cancelled wait is taken for a closed connection
                raise

        await self.inner(scope, broken_receive, send)  # type: ignore[operator]


@contextlib.contextmanager
def served(asgi: object) -> Iterator[str]:
    """``asgi`` under uvicorn on 127.0.0.1, port 0, in a thread; its URL."""
    sock = bind_socket("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(asgi, log_level="warning", lifespan="off"))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield url_of(sock)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _by_check(outcomes: tuple[CheckOutcome, ...]) -> dict[ConformanceCheck, CheckOutcome]:
    assert [o.check for o in outcomes] == list(ConformanceCheck)
    return {o.check: o for o in outcomes}


def test_a_correct_server_passes_every_check() -> None:
    with served(app) as url:
        started = time.monotonic()
        outcomes = _by_check(asyncio.run(check_url(url, stream_seconds=1.0)))
        took = time.monotonic() - started
    assert all(o.passed and not o.mechanism for o in outcomes.values()), outcomes
    assert "0 of 4 live requests reported a disconnect" in outcomes[ConformanceCheck.NO_FALSE_DISCONNECT].observed
    assert outcomes[ConformanceCheck.STREAM_WHOLE].observed.startswith("15 of 15 streams")
    assert took < 10  # seconds, not minutes


def test_a_receive_that_turns_a_cancelled_wait_into_a_disconnect_fails_and_says_how() -> None:
    with served(FalseDisconnectAfterCancel(app)) as url:
        outcomes = _by_check(asyncio.run(check_url(url)))  # 1 s streams: passes enough for the third poll
    polls = outcomes[ConformanceCheck.NO_FALSE_DISCONNECT]
    assert not polls.passed
    # As under gunicorn 27.0.1: the first poll reads the body, the second's wait is cancelled, the third "sees" a
    # disconnect.
    assert polls.observed.startswith("4 of 4 live requests reported a disconnect") and "at pass 3 of" in polls.observed
    assert polls.mechanism.startswith("a receive() cancelled inside is_disconnected() marks the live connection")
    stream = outcomes[ConformanceCheck.STREAM_WHOLE]
    assert not stream.passed and stream.observed.startswith("0 of 15 streams")
    assert stream.mechanism.startswith("the event stream ends early: is_disconnected() reports a disconnect")
    # A real disconnect is still seen, and the stream's work still ends: the defect is the false one only.
    assert outcomes[ConformanceCheck.DISCONNECT_SEEN].passed
    assert outcomes[ConformanceCheck.CANCEL_PROPAGATES].passed


def test_the_disconnect_relay_passes_where_the_server_breaks_it() -> None:
    # The server (here the shim) answers a cancelled wait with a closed connection; behind the relay, the app's
    # receive() is never the server's, so the polls and the streams are whole again.
    with served(FalseDisconnectAfterCancel(DisconnectRelay(app))) as url:
        outcomes = _by_check(asyncio.run(check_url(url)))
    assert all(o.passed for o in outcomes.values()), outcomes
    assert outcomes[ConformanceCheck.STREAM_WHOLE].observed.startswith("15 of 15 streams")


def test_an_answer_that_is_not_the_apps_is_never_a_pass() -> None:
    with served(Starlette()) as url:  # every route 404: a server that serves something else
        outcomes = _by_check(asyncio.run(check_url(url, stream_seconds=0.5)))
    assert not any(o.passed for o in outcomes.values()), outcomes
