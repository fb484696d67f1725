"""The profile: one server set-up, as a frozen, validated value."""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from app.errors import ConfigError
from app.settings import MODES, HandlerMode

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
"""A whole profile name (use ``fullmatch``: ``$`` would accept a trailing newline)."""
BACKEND_NAMES: tuple[str, ...] = ("uvicorn", "gunicorn", "hypercorn", "granian", "gunicorn-asgi", "ray", "ray-split")
"""The servers a profile can name. Profiles own the names (they sit below the launcher); the launcher's
backend registry maps each to its module, and tests/launcher/test_backends_registry.py checks the two agree."""
DEFAULT_TIMEOUT = 30.0
"""gunicorn's default worker timeout, as the write-up ran it."""
RAY_BACKENDS = frozenset({"ray", "ray-split"})
"""Backends that serve through Ray Serve: replicas play the part of workers."""
SPLIT_BACKEND = "ray-split"
"""The split topology: the Gradio demo in one replica at ``/``, the API in ``workers`` replicas under
:data:`SPLIT_API_PREFIX`, behind one port (Ray Serve's proxy routes by prefix)."""
SPLIT_API_PREFIX = "/api"
SPLIT_DEMO_REPLICAS = 1
"""One demo replica: one Gradio queue, so a click's join and its event stream always meet."""
SPLIT_DEMO_BACKEND = "uvicorn"
"""The split topology's demo group: one uvicorn process, the one server under which Gradio's demo works in every
mode (granian and gunicorn's asgi worker break its event streams: launcher.probe.conformance)."""
DEFAULT_MAX_ONGOING_REQUESTS = 5
"""Ray Serve's own default (``ray.serve._private.constants.DEFAULT_MAX_ONGOING_REQUESTS``, Ray 2.60)."""
RAY_SERVE_SHUTDOWN_MARGIN_SECONDS = 5.0
"""Serve's graceful shutdown may take the replicas' drain (the profile's timeout) plus this, for its controller
and proxy, before the launcher stops Ray itself (which kills what is left)."""
TOPOLOGIES: tuple[str, ...] = ("single", "split")
"""How a profile's processes are laid out. ``single``: the backend's workers each serve the whole app (the demo
included). ``split``: one machine, three groups the launcher supervises: the Gradio demo in one uvicorn process,
the API in ``workers`` single-worker servers of the profile's backend, and Caddy in front routing by path
(:mod:`launcher.split`). Ray's own split is its backend (``ray-split``), not this field."""
SPLIT_TOPOLOGY = "split"
FRONT_STOP_SECONDS = 10.0
"""How long Caddy, the split topology's front, gets to stop accepting and finish its proxied requests' hand-back
before it is killed: the groups behind it then drain in their own timeout."""
RAY_REAPER_WAIT_SECONDS = 15.0
"""How long the launcher waits for its reaper to stop a local Ray instance and sweep what is left of it."""
RAY_HEAD_START_SECONDS = 90.0
"""How long a local Ray instance's head (``ray start``) may take to be up: measured 3.5 s on an idle 2-core
machine, 14 s with a cold disk cache; well inside the probe's default start timeout (180 s), so that a head
that never comes up is reported as such."""


class ProfileError(ConfigError):
    """A profile is malformed; the message names the file, profile, key and value."""


@dataclass(frozen=True, kw_only=True)
class Profile:
    """A named server set-up: backend, workers, timeout, handler mode and limits."""

    name: str
    backend: str
    workers: int = 1
    timeout: float = DEFAULT_TIMEOUT
    """gunicorn's worker timeout; uvicorn's and hypercorn's graceful-shutdown timeout."""
    mode: str = HandlerMode.SYNC.value
    concurrency_limit: int = 1
    """Gradio's per-event concurrency limit for the demo buttons."""
    limiter: int = 1
    """Capacity of the per-process limiter in ``offload`` mode."""
    host: str = "127.0.0.1"
    port: int = 8000
    model: str = "tiny"
    """``tiny`` (built-in tiny pipeline), ``none``, or a local diffusers pipeline folder."""
    max_ongoing_requests: int = DEFAULT_MAX_ONGOING_REQUESTS
    """Ray Serve only: requests one replica runs at once; the proxy queues the rest."""
    topology: str = "single"
    """``single`` or ``split`` (see :data:`TOPOLOGIES`)."""
    disconnect_relay: bool = False
    """Opt-in workaround for servers that break Gradio's event stream (``launcher.asgi.DisconnectRelay``): the
    server's ``receive()`` is read by one task per request, and the app's disconnect polls are answered from it."""
    description: str = ""

    def __post_init__(self) -> None:
        # isinstance checks first: TOML gives any type, and bool is an int.
        def expect(key: str, value: Any, types: tuple[type, ...], what: str) -> None:
            if isinstance(value, bool) or not isinstance(value, types):
                raise ProfileError(f"{key} = {value!r}: expected {what}")

        expect("name", self.name, (str,), "a string")
        if not NAME_PATTERN.fullmatch(self.name):
            raise ProfileError(f"name = {self.name!r}: use letters, digits, '-', '_', '.' (at most 64)")
        expect("backend", self.backend, (str,), "a string")
        if self.backend not in BACKEND_NAMES:
            raise ProfileError(f"backend = {self.backend!r}: expected one of {', '.join(BACKEND_NAMES)}")
        expect("workers", self.workers, (int,), "an integer")
        if not 1 <= self.workers <= 64:
            raise ProfileError(f"workers = {self.workers!r}: expected 1 to 64")
        expect("timeout", self.timeout, (int, float), "a number of seconds")
        if not 0 < self.timeout <= 86400:
            raise ProfileError(f"timeout = {self.timeout!r}: expected more than 0 and at most 86400 seconds")
        object.__setattr__(self, "timeout", float(self.timeout))
        expect("mode", self.mode, (str,), "a string")
        if self.mode not in MODES:
            raise ProfileError(f"mode = {self.mode!r}: expected one of {', '.join(MODES)}")
        for key in ("concurrency_limit", "limiter", "max_ongoing_requests"):
            value = getattr(self, key)
            expect(key, value, (int,), "an integer")
            if not 1 <= value <= 1024:
                raise ProfileError(f"{key} = {value!r}: expected 1 to 1024")
        expect("host", self.host, (str,), "a string")
        _check_host(self.host)
        expect("port", self.port, (int,), "an integer")
        if not 0 <= self.port <= 65535:
            raise ProfileError(f"port = {self.port!r}: expected 0 to 65535")
        expect("model", self.model, (str,), "a string")
        if not self.model:
            raise ProfileError("model = '': expected 'tiny', 'none' or a folder")
        expect("topology", self.topology, (str,), "a string")
        if self.topology not in TOPOLOGIES:
            raise ProfileError(f"topology = {self.topology!r}: expected one of {', '.join(TOPOLOGIES)}")
        if self.topology == SPLIT_TOPOLOGY and self.backend in RAY_BACKENDS:
            # Ray Serve splits by itself (ray-split), behind its own proxy: a front before it would be a second hop.
            raise ProfileError(
                f"topology = 'split' with backend = {self.backend!r}: Ray's split is the 'ray-split' backend; "
                "the split topology takes uvicorn, gunicorn, gunicorn-asgi, hypercorn or granian"
            )
        if not isinstance(self.disconnect_relay, bool):
            raise ProfileError(f"disconnect_relay = {self.disconnect_relay!r}: expected true or false")
        if self.disconnect_relay and self.backend in RAY_BACKENDS:
            raise ProfileError(f"disconnect_relay = true: not for {self.backend} (Ray Serve's proxy serves the app)")
        expect("description", self.description, (str,), "a string")

    @property
    def handler_mode(self) -> HandlerMode:
        """The mode as an enum."""
        return HandlerMode(self.mode)

    @property
    def demo_processes(self) -> int:
        """How many processes hold the Gradio demo (each with its own queue)."""
        return demo_processes(self.backend, self.workers, self.topology)

    @property
    def is_split(self) -> bool:
        """The demo in one process, the API in ``workers``: Ray's split backend or the split topology."""
        return self.backend == SPLIT_BACKEND or self.topology == SPLIT_TOPOLOGY

    @property
    def demo_backend(self) -> str:
        """The server that serves the Gradio demo: the split topology's demo group runs its own."""
        return SPLIT_DEMO_BACKEND if self.topology == SPLIT_TOPOLOGY else self.backend

    @property
    def processes(self) -> int:
        """Serving processes (workers or replicas) that report ready: a split adds its demo process."""
        return self.workers + (SPLIT_DEMO_REPLICAS if self.is_split else 0)

    @property
    def stop_seconds(self) -> float:
        """The longest a graceful stop may take before what is left is killed.

        In-flight requests get ``timeout`` on every backend; Ray's stop then
        also stops Serve's controller and proxy, the GCS and the raylet.
        """
        if self.backend in RAY_BACKENDS:
            return self.timeout + RAY_SERVE_SHUTDOWN_MARGIN_SECONDS + RAY_REAPER_WAIT_SECONDS
        if self.topology == SPLIT_TOPOLOGY:
            # The front first, then both groups drain side by side, each in the profile's timeout.
            return FRONT_STOP_SECONDS + self.timeout
        return self.timeout

    @property
    def api_prefix(self) -> str:
        """Where the API routes live: ``/api`` in the split topology, else at the root."""
        return SPLIT_API_PREFIX if self.backend == SPLIT_BACKEND else ""

    def replace(self, **changes: Any) -> Profile:
        """A copy with ``changes`` applied and validated again."""
        unknown = sorted(set(changes) - set(FIELDS))
        if unknown:
            raise ProfileError(f"unknown profile field {unknown[0]!r} = {changes[unknown[0]]!r}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Every field, for TOML and JSON output."""
        return dataclasses.asdict(self)


FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Profile))


def demo_processes(backend: str, workers: int, topology: str = "single") -> int:
    """Processes holding the demo for ``backend`` with ``workers``: one in a split, else every worker."""
    return SPLIT_DEMO_REPLICAS if backend == SPLIT_BACKEND or topology == SPLIT_TOPOLOGY else workers


def _check_host(host: str) -> None:
    if host == "localhost":
        return
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ProfileError(f"host = {host!r}: expected an IP address or 'localhost'") from None


def is_loopback(host: str) -> bool:
    """True for addresses that only this machine can reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
