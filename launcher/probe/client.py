"""The probe's HTTP engine: bursts of concurrent requests fired at one instant.

API requests and health checks go through aiohttp (one event loop, no thread
per request: it keeps up with thousands of requests per second where a shared
``httpx.AsyncClient`` managed ~450/s here). Every API request opens its own
connection, as separate users would, so the kernel spreads them over workers
the way it spreads real traffic. Demo clicks go through ``gradio_client``,
one client (one session) per simulated user, through Gradio's real queue.

Everything is bounded: each request has a timeout and health polling stops
with the burst.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import json
import resource
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from launcher import interrupts
from launcher.asgi import PID_HEADER, parse_timing
from launcher.probe.model import Kind, QueueStatus, RequestRecord

HEALTH_INTERVAL_S = 0.05
_ATTRIBUTION_KEYS = ("pid", "thread", "start_ns", "end_ns", "in_flight", "pipeline_start_ns", "pipeline_end_ns")
QUEUE_STEPS = {"/queue/join": "join", "/queue/data": "stream"}
"""Gradio's queue requests by path suffix: a click is a join (POST) and an event stream (GET)."""


@dataclass(frozen=True, kw_only=True)
class RequestSpec:
    """One request of a burst."""

    kind: str
    """:attr:`Kind.API` or :attr:`Kind.DEMO` (a plain string is one too: Kind is a StrEnum)."""
    work: str
    path: str = ""
    """API: path and query, e.g. ``/test1?seconds=1``."""
    method: str = "GET"
    """API: the HTTP method (a user's scenario file may name any)."""
    json_body: Any = None
    """API: a JSON body to send (None: no body)."""
    body_attribution: bool = True
    """API: read the work interval from the answer's JSON body when it carries one (the reference service
    reports its model's own interval there). Off for a user's app: its body is its own, and only the
    launcher's headers are attribution."""
    api_name: str = ""
    """Demo: the event's api_name, e.g. ``/sleep``."""
    args: tuple[Any, ...] = ()
    delay_s: float = 0.0
    """Sent this long after the burst's start."""


def probe_session() -> aiohttp.ClientSession:
    """A session for the probe's requests: a fresh connection per request, and no request ever sent twice.

    aiohttp resends an idempotent request (GET) once when the server drops the connection
    (``ServerDisconnectedError``: RFC 9112's retry of a persistent connection), and says nothing. A probe
    must see each drop as it happened: in gunicorn's timeout scenario the resent request blocked the
    replacement worker (or another one) until it was killed too, a second WORKER TIMEOUT and a scenario of
    60-124 s where the mechanism is one kill at 30 s. aiohttp has no public switch for it; its own test
    client turns it off the same way.
    """
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True, limit=0))
    session._retry_connection = False  # private: see above
    return session


def raise_fd_limit(needed: int) -> None:
    """Raise the soft open-files limit to ``needed`` (up to the hard limit) for big bursts."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def error_class(exc: BaseException) -> str:
    """A short, stable name for why a request failed."""
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return "timeout"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "disconnected"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "refused"
    if isinstance(exc, aiohttp.ClientOSError | ConnectionResetError):
        return "reset"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "truncated"
    return type(exc).__name__


def _attribution(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        return {}
    return {k: body[k] for k in _ATTRIBUTION_KEYS if isinstance(body.get(k), int)}


def header_attribution(headers: Any) -> dict[str, Any]:
    """Pid and server-side request interval from the launcher's attribution headers (any app)."""
    found: dict[str, Any] = {}
    pid = headers.get(PID_HEADER)
    if isinstance(pid, str) and pid.isdigit():
        found["pid"] = int(pid)
    timing = parse_timing(headers.get("server-timing"))
    if timing is not None:
        found["start_ns"], found["end_ns"] = timing
    return found


class _StepRecorder:
    """Which worker pid answered each Gradio queue request, keyed by the client's session hash.

    gradio_client makes a click's join (POST) and event stream (GET) with
    plain ``httpx`` calls that take no hooks, so the probe wraps httpx's
    transport in this process once; it records only while a recorder is
    active and changes nothing it passes on.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.steps: dict[str, dict[str, int]] = {}

    def note(self, request: Any, response: Any) -> None:
        path = request.url.path
        step = next((name for suffix, name in QUEUE_STEPS.items() if path.endswith(suffix)), None)
        pid = response.headers.get(PID_HEADER)
        if step is None or not (isinstance(pid, str) and pid.isdigit()):
            return
        session = request.url.params.get("session_hash")
        if session is None and request.method == "POST":
            try:
                session = json.loads(request.content).get("session_hash")
            except (ValueError, AttributeError):
                session = None
        if isinstance(session, str):
            with self._lock:
                self.steps.setdefault(session, {}).setdefault(step, int(pid))

    def pop(self, session: str) -> dict[str, int]:
        with self._lock:
            return self.steps.pop(session, {})


STEPS = _StepRecorder()
_transport_wrapped = False
_wrap_lock = threading.Lock()


def _record_queue_steps() -> None:
    """Wrap httpx's transport once so that queue requests' pids reach :data:`STEPS`."""
    global _transport_wrapped
    import httpx

    with _wrap_lock:
        if _transport_wrapped:
            return
        original = httpx.HTTPTransport.handle_request

        def handle_request(self: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
            response = original(self, request)
            STEPS.note(request, response)
            return response

        httpx.HTTPTransport.handle_request = handle_request  # type: ignore[method-assign]
        _transport_wrapped = True


def _queue_statuses(job: Any, clock_offset_ns: int) -> tuple[QueueStatus, ...]:
    """The queue-status messages (rank, ETA) a finished gradio_client job received, oldest first.

    gradio_client stamps each with the wall clock when its stream reader
    handled it; ``clock_offset_ns`` (wall - monotonic) puts them on the
    machine-wide monotonic clock of every other record.
    """
    from gradio_client.utils import Status, StatusUpdate

    communicator = getattr(job, "communicator", None)
    updates = getattr(communicator, "updates", None)
    found: list[QueueStatus] = []
    while updates is not None and not updates.empty():
        update = updates.get_nowait()
        if isinstance(update, StatusUpdate) and update.code == Status.IN_QUEUE and update.time is not None:
            found.append(
                QueueStatus(
                    at_ns=int(update.time.timestamp() * 1e9) - clock_offset_ns,
                    rank=update.rank,
                    queue_size=update.queue_size,
                    eta_s=update.eta,
                )
            )
    return tuple(found)


async def _api_request(
    session: aiohttp.ClientSession, base_url: str, spec: RequestSpec, *, index: int, t0: float, timeout: float
) -> RequestRecord:
    await asyncio.sleep(max(0.0, t0 + spec.delay_s - time.monotonic()))
    sent = time.monotonic_ns()
    try:
        async with session.request(
            spec.method, base_url + spec.path, json=spec.json_body, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as response:
            raw = await response.read()
            received = time.monotonic_ns()
            body = None
            if spec.body_attribution:
                try:
                    body = json.loads(raw)
                except ValueError:
                    pass
            error = None if response.status < 400 else f"http_{response.status}"
            return RequestRecord(
                kind=Kind.API,
                work=spec.work,
                index=index,
                sent_ns=sent,
                received_ns=received,
                status=response.status,
                error=error,
                detail=None if error is None else raw[:200].decode(errors="replace"),
                # The body's work interval when the app reports one, else the request's.
                **{**header_attribution(response.headers), **_attribution(body)},
            )
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        return RequestRecord(
            kind=Kind.API,
            work=spec.work,
            index=index,
            sent_ns=sent,
            received_ns=time.monotonic_ns(),
            error=error_class(exc),
            detail=str(exc)[:200] or type(exc).__name__,
        )


def classify_demo_error(exc: BaseException, workers: int) -> str:
    """Name a failed demo click; a split queue is named as such.

    Gradio's queue join (POST .../queue/join) and its event stream (GET
    .../queue/data) are separate HTTP requests. With several workers they can
    reach different processes, each with its own queue: the stream's worker
    answers that it knows no such session, gradio_client's stream reader ends,
    and the job is cancelled. A cancelled job (or a 404 for the session) with
    more than one worker is that failure; with one worker it never happens.
    """
    text = f"{type(exc).__name__}: {exc}".lower()
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "timeout"
    if workers > 1 and (
        isinstance(exc, concurrent.futures.CancelledError) or "session not found" in text or "404" in text
    ):
        return "queue_split"
    return "demo_" + type(exc).__name__


@dataclass(kw_only=True)
class _StartLine:
    """Where demo threads wait until every demo client is connected, then learn the burst's instant."""

    connected: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    go: threading.Event = field(default_factory=threading.Event)
    t0: float = 0.0


def _demo_click(
    base_url: str, spec: RequestSpec, *, index: int, line: _StartLine, timeout: float, workers: int
) -> RequestRecord:
    from gradio_client import Client

    def record(sent: int, **outcome: Any) -> RequestRecord:
        return RequestRecord(
            kind=Kind.DEMO, work=spec.work, index=index, sent_ns=sent, received_ns=time.monotonic_ns(), **outcome
        )

    _record_queue_steps()
    # One client per simulated user: its own session, created before the
    # burst's instant so that fetching the config is not part of the click.
    try:
        client = Client(base_url, verbose=False, httpx_kwargs={"timeout": timeout})
    except Exception as exc:  # the client raises assorted types while connecting
        return record(time.monotonic_ns(), error=error_class(exc), detail=str(exc)[:200])
    finally:
        line.connected.release()
    try:
        if not line.go.wait(timeout):
            return record(time.monotonic_ns(), error="not_started")
        time.sleep(max(0.0, line.t0 + spec.delay_s - time.monotonic()))
        offset = time.time_ns() - time.monotonic_ns()
        sent = time.monotonic_ns()
        job = client.submit(*spec.args, api_name=spec.api_name)
        try:
            result = job.result(timeout=timeout)
        except Exception as exc:  # gradio_client wraps failures in several exception types
            return record(
                sent,
                error=classify_demo_error(exc, workers),
                detail=f"{type(exc).__name__}: {exc}"[:200],
                steps=STEPS.pop(client.session_hash),
                queue=_queue_statuses(job, offset),
            )
        steps = STEPS.pop(client.session_hash)
        queue = _queue_statuses(job, offset)
    finally:
        client.close()
    body = result[-1] if isinstance(result, tuple | list) else result
    return record(sent, status=200, steps=steps, queue=queue, **_attribution(body))


async def _poll_health(base_url: str, stop: asyncio.Event, records: list[RequestRecord], timeout: float) -> None:
    # A fresh connection per check: a kept-alive one would always reach the
    # same worker. Checks are fired on a fixed cadence, not one after another,
    # so one stalled check does not hide the next ones.
    pending: set[asyncio.Task[None]] = set()
    async with probe_session() as session:

        async def check(index: int) -> None:
            sent = time.monotonic_ns()
            fields: dict[str, Any] = {}
            try:
                async with session.get(f"{base_url}/health", timeout=aiohttp.ClientTimeout(total=timeout)) as response:
                    body = await response.json(content_type=None)
                    fields["status"] = response.status
                    fields.update(header_attribution(response.headers))
                    fields.pop("start_ns", None)
                    if isinstance(body, dict):
                        fields["pid"] = body.get("pid", fields.get("pid"))
                        # When the server's handler ran (its monotonic clock is ours).
                        fields["end_ns"] = body.get("now_ns", fields.get("end_ns"))
            except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
                fields = {"error": error_class(exc)}
            records.append(
                RequestRecord(
                    kind=Kind.HEALTH, work=None, index=index, sent_ns=sent, received_ns=time.monotonic_ns(), **fields
                )
            )

        index = 0
        while not stop.is_set():
            task = asyncio.create_task(check(index))
            pending.add(task)
            task.add_done_callback(pending.discard)
            index += 1
            try:
                await asyncio.wait_for(stop.wait(), HEALTH_INTERVAL_S)
            except TimeoutError:
                pass
        if pending:
            await asyncio.wait(pending, timeout=timeout)
        for task in pending:
            task.cancel()


async def run_burst(
    base_url: str,
    specs: Sequence[RequestSpec],
    *,
    timeout: float,
    workers: int,
    health: bool = True,
    phase: str = "burst",
) -> list[RequestRecord]:
    """Fire ``specs`` at one instant (plus each one's delay); return every record, health checks included.

    ``phase`` names the burst for :func:`launcher.interrupts.areached`: while
    its requests are in flight, a test may hold it there and send a signal.
    """
    raise_fd_limit(4 * len(specs) + 256)
    loop = asyncio.get_running_loop()
    demo_specs = [(i, s) for i, s in enumerate(specs) if s.kind == Kind.DEMO]
    api_specs = [(i, s) for i, s in enumerate(specs) if s.kind == Kind.API]
    line = _StartLine()
    health_records: list[RequestRecord] = []
    stop = asyncio.Event()
    # One thread per demo user: the default executor has too few on a small machine.
    clickers = ThreadPoolExecutor(max_workers=max(1, len(demo_specs)), thread_name_prefix="launch-demo")
    poller: asyncio.Task[None] | None = None
    try:
        demo_tasks = [
            loop.run_in_executor(
                clickers,
                functools.partial(_demo_click, base_url, s, index=i, line=line, timeout=timeout, workers=workers),
            )
            for i, s in demo_specs
        ]
        # Demo clients connect first (fetching Gradio's config is not part of
        # the burst); the instant is fixed once every one of them is ready.
        for _ in demo_specs:
            await loop.run_in_executor(None, line.connected.acquire, True, timeout)
        t0 = time.monotonic() + 0.05
        line.t0 = t0
        line.go.set()
        if health:
            poller = asyncio.create_task(_poll_health(base_url, stop, health_records, timeout))
        async with probe_session() as session:
            api_tasks = [
                asyncio.ensure_future(_api_request(session, base_url, s, index=i, t0=t0, timeout=timeout))
                for i, s in api_specs
            ]
            await interrupts.areached(phase)
            results = await asyncio.gather(*api_tasks, *demo_tasks)
    finally:
        line.go.set()
        clickers.shutdown(wait=False, cancel_futures=True)
        stop.set()
        if poller is not None:
            await poller
    return sorted(results, key=lambda r: r.index) + health_records


async def run_slow_clients(base_url: str, *, clients: int, seconds: float, timeout: float) -> list[RequestRecord]:
    """Hold ``clients`` connections that send half a request and then nothing, for ``seconds``.

    Meanwhile /health is polled; its records are returned. A server that
    stalls on slow headers shows it as slow or failed health checks -- a
    finding, never a hang: every connection is closed when the time is up.
    """
    from urllib.parse import urlsplit

    raise_fd_limit(2 * clients + 256)
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    writers: list[asyncio.StreamWriter] = []
    records: list[RequestRecord] = []
    stop = asyncio.Event()
    try:
        for _ in range(clients):
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
            except (OSError, TimeoutError):
                break
            # The request line and one header, never the blank line that ends them.
            writer.write(f"GET /health HTTP/1.1\r\nHost: {host}\r\n".encode())
            writers.append(writer)
        poller = asyncio.create_task(_poll_health(base_url, stop, records, timeout))
        await asyncio.sleep(seconds)
        stop.set()
        await poller
    finally:
        for writer in writers:
            writer.close()
    return records
