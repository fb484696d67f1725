"""The server conformance check: does a backend's server do what Gradio's event stream needs.

A Gradio demo click is a queue join and an event stream; the stream's loop
calls Starlette's ``request.is_disconnected()`` on every pass (a ``receive()``
inside an already-cancelled anyio scope) and streams its messages through a
``StreamingResponse``. Two servers break that, each in its own way, and the
probe used to see only the result (demo clicks failing) without a prediction:

- gunicorn 27's ``asgi`` worker: ``BodyReceiver._wait_for_disconnect`` ends in
  ``finally: self._closed = True``, so the cancelled wait of the second poll
  marks the live connection closed and the third poll reports a disconnect;
  Gradio then ends the stream right after ``process_starts``.
- granian 2.8: its ``PyFutureAwaitable`` is cancelled faster than it resolves
  under Starlette's streaming (upstream issue 525): the stream is cancelled
  mid-way, "Cancelled via cancel scope ... by <Task ... future_watcher>". It is
  intermittent and strikes at a stream's start, so the check opens many
  streams (:data:`STREAM_INTERVAL_S`) and one broken stream fails it: a
  verdict that does not depend on this run's luck.

So before the profiles, the probe serves launch's own tiny ASGI app
(:mod:`launcher.probe.conformance_app`) under each backend exactly as a
profile serves an app (a ``launch --profile BACKEND-1-sync --app ...`` child,
:class:`launcher.child.ServerProcess`), fires the checks over real HTTP, and
records the outcome with the server's name and version. Nothing here knows
which server has which defect: a fixed release passes, and the prediction
(:mod:`launcher.probe.expectations`) and the verdicts flip with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import json
import re
import time
import uuid
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from launcher import interrupts
from launcher.child import ServerProcess
from launcher.errors import StartupError
from launcher.probe.model import CheckOutcome, Conformance, ConformanceCheck
from launcher.userapp import AppSpec
from profiles.builtin import builtin_profiles
from profiles.model import RAY_BACKENDS, Profile

APP = AppSpec(target="launcher.probe.conformance_app:app")
SERVER_PACKAGE: dict[str, str] = {
    "uvicorn": "uvicorn",
    "gunicorn": "uvicorn-worker",
    "gunicorn-asgi": "gunicorn",
    "hypercorn": "hypercorn",
    "granian": "granian",
    "ray": "ray",
    "ray-split": "ray",
}
"""The package whose code answers the app's ``receive()`` and ``send()`` under each backend (gunicorn's arbiter
only forks: under the ``gunicorn`` backend uvicorn-worker's UvicornWorker serves)."""

POLL_REQUESTS = 4
POLLS_PER_REQUEST = 100
"""``is_disconnected()`` polls: 4 live requests of 100 passes each. gunicorn 27's asgi worker reported a
disconnect at the 3rd pass of every request here; a correct server reports none in 400."""
LANES = 3
STREAMS_PER_LANE = 5
STREAM_SECONDS = 5.0
STREAM_INTERVAL_S = 0.25
"""Event streams for 5 s: 3 clients at once, each opening 5 streams of 1 s one after another, a message every
0.25 s (Gradio's messages are sparse: a click's stream waits on its queue between ``process_starts`` and
``process_completed``). granian 2.8.9 broke a stream at its start, before its first message: 7, 10 and 10 of
15 such streams in three checks here, against 0 of 16 concurrent 5 s streams in three checks and 0 with a
message every 0.02 s. So each stream's start is a chance: 15 starts make a lucky pass unlikely (about 1 in
30 000 at the rate measured), and one broken stream fails the check."""
LEAVE_WAIT_S = 2.0
"""How long the app may take to see a client that left (``/leave``, ``/hang``)."""
REQUEST_TIMEOUT_S = 30.0


@dataclass(frozen=True, kw_only=True)
class _Stream:
    """One event stream as the client read it, and how the app says it ended."""

    events: int
    done: bool
    ended: str
    """The app's account (``/seen``): ``whole``, ``is_disconnected() reported a disconnect ...``, the exception
    that ended it, or the client's failure when the app recorded nothing."""


def server_version(backend: str) -> tuple[str, str | None]:
    """The package that serves under ``backend`` and its installed version (None: not installed)."""
    package = SERVER_PACKAGE.get(backend, backend)
    try:
        return package, importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return package, None


def _session(timeout: float = REQUEST_TIMEOUT_S) -> aiohttp.ClientSession:
    # A connection of its own per request (as separate browser tabs), never through a proxy.
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(force_close=True),
        timeout=aiohttp.ClientTimeout(total=timeout),
        trust_env=False,
    )


async def _polls(url: str) -> CheckOutcome:
    async def one() -> dict[str, object]:
        async with _session() as session, session.get(f"{url}/polls?n={POLLS_PER_REQUEST}") as response:
            body: dict[str, object] = await response.json(content_type=None)
            return body

    answers = await asyncio.gather(*(one() for _ in range(POLL_REQUESTS)), return_exceptions=True)
    total = POLL_REQUESTS * POLLS_PER_REQUEST
    # An answer that is not the app's (a 404 from another app, an error page) is a failure, never a pass.
    reports = [a for a in answers if isinstance(a, dict) and "passes" in a]
    failed = [a for a in answers if not (isinstance(a, dict) and "passes" in a)]
    false = [a for a in reports if a.get("problem") == "false_disconnect"]
    stray = [a for a in reports if a.get("problem") == "stray_cancel"]
    firsts = sorted(int(str(a["at"])) for a in false + stray)
    observed = (
        f"{len(false)} of {POLL_REQUESTS} live requests reported a disconnect, {len(stray)} a stray cancellation"
        + (f" (first at pass {firsts[0]} of {POLLS_PER_REQUEST})" if firsts else f" in {total} passes")
        + (f"; {len(failed)} request(s) got no report: {str(failed[0])[:120]}" if failed else "")
    )
    if false:
        mechanism = (
            "a receive() cancelled inside is_disconnected() marks the live connection closed, "
            "so the next poll reports a disconnect"
        )
    elif stray:
        mechanism = "a receive() cancelled inside is_disconnected() leaks its cancellation into the next await"
    elif failed:
        mechanism = "a live request with is_disconnected() polls got no answer"
    else:
        mechanism = ""
    return CheckOutcome(
        check=ConformanceCheck.NO_FALSE_DISCONNECT, passed=not mechanism, observed=observed, mechanism=mechanism
    )


async def _one_stream(url: str, seconds: float) -> _Stream:
    token = uuid.uuid4().hex
    events = 0
    done = False
    client_error = ""
    async with _session(timeout=seconds + REQUEST_TIMEOUT_S) as session:
        query = f"seconds={seconds:g}&interval={STREAM_INTERVAL_S:g}&token={token}"
        try:
            async with session.get(f"{url}/stream?{query}") as response:
                async for line in response.content:
                    if line.startswith(b"data:"):
                        message = json.loads(line[5:])
                        done = done or "done" in message
                        events += "event" in message
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            client_error = f"the client's read failed: {type(exc).__name__}"
        # The app's own account: a stream the server cancelled often could not send its error event.
        deadline = time.monotonic() + LEAVE_WAIT_S
        while True:
            async with session.get(f"{url}/seen?token={token}") as answer:
                seen: dict[str, str | None] = await answer.json(content_type=None)
            ended = seen.get("stream")
            if ended or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
    return _Stream(events=events, done=done, ended=ended or client_error or "not recorded by the app")


_TASK_CORO = re.compile(r"coro=<([\w.<>]+)\(")


def _stream_mechanism(ended: str) -> str:
    """How a broken stream ended, in words that stay the same between runs (no counts, no object ids)."""
    if ended.startswith("is_disconnected()"):
        return "the event stream ends early: is_disconnected() reports a disconnect while the client still reads"
    if "Cancelled via cancel scope" in ended:
        origin = _TASK_CORO.search(ended)
        by = f" by its request's task ({origin.group(1).rsplit('.', 1)[-1]})" if origin else ""
        return f"the event stream is cancelled mid-stream{by}: CancelledError 'Cancelled via cancel scope'"
    head = re.sub(r"0x[0-9a-f]+|\b[0-9a-f]{8,}\b", "…", ended.split(":", 1)[0])
    return f"the event stream breaks off ({head})"


async def _lane(url: str, seconds: float) -> list[_Stream]:
    """Streams one after another for ``seconds`` in all: each stream's start is a chance for the race."""
    done: list[_Stream] = []
    for _ in range(STREAMS_PER_LANE):
        done.append(await _one_stream(url, seconds / STREAMS_PER_LANE))
    return done


async def _streams(url: str, seconds: float) -> CheckOutcome:
    expected = max(1, round(seconds / STREAMS_PER_LANE / STREAM_INTERVAL_S))
    lanes = await asyncio.gather(*(_lane(url, seconds) for _ in range(LANES)))
    streams = [s for lane in lanes for s in lane]
    total = len(streams)
    broken = [s for s in streams if not (s.done and s.events == expected)]
    observed = (
        f"{total - len(broken)} of {total} streams of {seconds / STREAMS_PER_LANE:g} s ({expected} messages each)"
        " arrived whole"
    )
    if broken:
        observed += (
            f"; {len(broken)} broke off after {min(s.events for s in broken)}-{max(s.events for s in broken)}"
            f" message(s), the app says: {broken[0].ended[:200]}"
        )
    return CheckOutcome(
        check=ConformanceCheck.STREAM_WHOLE,
        passed=not broken,
        observed=observed,
        mechanism=_stream_mechanism(broken[0].ended) if broken else "",
    )


async def _leave_and_ask(url: str, route: str, field: str) -> str | None:
    """Open ``route``, read its first event, leave; what the app recorded in ``field`` within the wait."""
    token = uuid.uuid4().hex
    async with _session() as session:
        response = await session.get(f"{url}{route}?token={token}")
        await response.content.readline()
        response.close()  # the client leaves: its connection is closed mid-stream
        deadline = time.monotonic() + LEAVE_WAIT_S
        while True:
            async with session.get(f"{url}/seen?token={token}") as answer:
                seen: dict[str, str | None] = await answer.json(content_type=None)
            if seen.get(field) or time.monotonic() > deadline:
                return seen.get(field)
            await asyncio.sleep(0.05)


async def _disconnect_seen(url: str) -> CheckOutcome:
    how = await _leave_and_ask(url, "/leave", "left")
    return CheckOutcome(
        check=ConformanceCheck.DISCONNECT_SEEN,
        passed=how is not None,
        observed=f"client left mid-stream: {how or f'unseen after {LEAVE_WAIT_S:g} s'}",
        mechanism="" if how else "a client that leaves mid-stream is never reported to the app",
    )


async def _cancel_propagates(url: str) -> CheckOutcome:
    how = await _leave_and_ask(url, "/hang", "ended")
    ended = how in ("cancelled", "closed")
    return CheckOutcome(
        check=ConformanceCheck.CANCEL_PROPAGATES,
        passed=ended,
        observed=f"client left mid-stream: the request's work {how}"
        if ended
        else f"client left mid-stream: the request's work still ran after {LEAVE_WAIT_S:g} s",
        mechanism="" if ended else "the request's work is not cancelled when its client leaves",
    )


async def _guarded(check: ConformanceCheck, run: Coroutine[Any, Any, CheckOutcome]) -> CheckOutcome:
    try:
        return await run
    except (TimeoutError, aiohttp.ClientError, ValueError, OSError) as exc:
        return CheckOutcome(
            check=check,
            passed=False,
            observed=f"the check itself failed: {type(exc).__name__}: {str(exc)[:160]}",
            mechanism="the conformance app got no usable answer",
        )


async def check_url(url: str, *, stream_seconds: float = STREAM_SECONDS) -> tuple[CheckOutcome, ...]:
    """Every check against the conformance app served at ``url``, side by side (a few seconds in all)."""
    return tuple(
        await asyncio.gather(
            _guarded(ConformanceCheck.NO_FALSE_DISCONNECT, _polls(url)),
            _guarded(ConformanceCheck.STREAM_WHOLE, _streams(url, stream_seconds)),
            _guarded(ConformanceCheck.DISCONNECT_SEEN, _disconnect_seen(url)),
            _guarded(ConformanceCheck.CANCEL_PROPAGATES, _cancel_propagates(url)),
        )
    )


def conformance_profile(backend: str, *, relay: bool = False) -> Profile:
    """The profile the check serves its app with: the backend's built-in 1-worker profile.

    One process holds the app's records, and the mechanisms do not depend on the worker count.
    """
    return builtin_profiles()[f"{backend}-1-sync"].replace(disconnect_relay=relay)


def check_backend(
    backend: str, *, relay: bool = False, stream_seconds: float = STREAM_SECONDS, start_timeout: float = 60.0
) -> Conformance:
    """Serve the conformance app under ``backend`` as a profile serves an app, run every check, stop it."""
    server, version = server_version(backend)
    started = time.monotonic()
    if backend in RAY_BACKENDS:
        # Ray Serve's proxy serves through uvicorn; a local Ray instance takes 30-60 s to start, more than the
        # whole check is worth. Its profiles are judged as before, without a prediction from here.
        return Conformance(
            backend=backend, relay=relay, server=server, version=version, error="not checked: Ray backend"
        )
    process = ServerProcess(
        profile=conformance_profile(backend, relay=relay),
        app=APP,
        health_path="/health",
        attribution=False,
        hold_phase="conformance",
    )
    try:
        try:
            process.start(timeout=start_timeout)
        except StartupError as exc:
            return Conformance(
                backend=backend,
                relay=relay,
                server=server,
                version=version,
                seconds=round(time.monotonic() - started, 2),
                error=f"the conformance app did not start: {exc}",
            )
        outcomes = interrupts.run(check_url(process.url, stream_seconds=stream_seconds))
    finally:
        with contextlib.suppress(Exception):
            process.stop()
        process.cleanup()
    return Conformance(
        backend=backend,
        relay=relay,
        server=server,
        version=version,
        outcomes=tuple(outcomes),
        seconds=round(time.monotonic() - started, 2),
    )


def check_backends(
    checks: Sequence[tuple[str, bool]],
    *,
    stream_seconds: float = STREAM_SECONDS,
    progress: Callable[[str, str], None] | None = None,
) -> tuple[Conformance, ...]:
    """:func:`check_backend` for each distinct ``(backend, relay)`` of ``checks``, in order."""
    done: list[Conformance] = []
    for backend, relay in dict.fromkeys(checks):
        interrupts.raise_if_stopped()
        if progress is not None:
            behind = " behind the disconnect relay" if relay else ""
            progress(backend, f"launch's own ASGI app served as {backend}-1-sync serves an app{behind}")
        done.append(check_backend(backend, relay=relay, stream_seconds=stream_seconds))
    return tuple(done)
