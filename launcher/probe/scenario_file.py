"""The scenario file of ``launch probe --app``: the user's health route, bursts and Gradio endpoints (TOML).

::

    health = "/health"          # GET, must answer 200 once the app is up
    health_timeout = 30         # seconds to wait for that (default 30)

    [[burst]]
    name = "search"             # optional; default "METHOD path"
    method = "POST"             # default GET
    path = "/search"
    query = { limit = 5 }       # optional query parameters
    json = { text = "hello" }   # optional JSON body
    n = 4                       # concurrent requests (default 4)
    repeats = 2                 # times the burst is fired (default 1)

    [[gradio]]
    api_name = "/predict"
    inputs = ["hello", 3]
    n = 2
    path = "/demo"              # which demo, only when the app mounts several (found by itself otherwise)

    [target]                    # optional: the load to carry (launch probe --target-rate), after the matrix
    rate = "5/s"                # or 300/min, or a number (per second)
    route = "/search?limit=5"   # a GET route of the app
    p99 = "2s"                  # default 2s

The command line's ``--target-rate``, ``--route`` and ``--p99`` override the file's, key by key; ``-n`` and
``-r`` override every entry's ``n`` and ``repeats``.
Every mistake is one line naming the file, the key and the value (:class:`ScenarioFileError`).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from launcher.errors import ConfigError
from launcher.probe.limits import MAX_REPEATS, MAX_REQUESTS

DEFAULT_N = 4
MAX_TIMEOUT_S = 600.0


class ScenarioFileError(ConfigError):
    """The scenario file cannot be used (one line: file, key, value, why)."""


def _path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError("expected a path starting with /")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Burst(_Strict):
    """N concurrent requests to one route, fired ``repeats`` times."""

    name: str = ""
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    path: str
    query: dict[str, str | int | float | bool] = Field(default_factory=dict)
    json_body: Any = Field(default=None, alias="json")
    n: int = Field(default=DEFAULT_N, ge=1, le=MAX_REQUESTS)
    repeats: int = Field(default=1, ge=1, le=MAX_REPEATS)
    timeout: float = Field(default=60.0, gt=0, le=MAX_TIMEOUT_S)
    """Seconds one request may take."""

    _check_path = field_validator("path")(_path)

    @property
    def label(self) -> str:
        """The route's name in tables and JSON."""
        return self.name or f"{self.method} {self.path}"

    @property
    def url_path(self) -> str:
        """Path and query string."""
        if not self.query:
            return self.path
        query = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in self.query.items()}
        return f"{self.path}?{urlencode(query)}"


class GradioEndpoint(_Strict):
    """N concurrent clicks of one Gradio event (by ``api_name``), through ``gradio_client`` and Gradio's queue."""

    name: str = ""
    api_name: str
    inputs: list[Any] = Field(default_factory=list)
    n: int = Field(default=DEFAULT_N, ge=1, le=MAX_REQUESTS)
    repeats: int = Field(default=1, ge=1, le=MAX_REPEATS)
    timeout: float = Field(default=60.0, gt=0, le=MAX_TIMEOUT_S)
    path: str | None = None
    """Where the demo is mounted; needed only when the app mounts several (the launcher finds a single one)."""

    _check_api_name = field_validator("api_name")(_path)
    _check_mount = field_validator("path")(_path)

    @property
    def label(self) -> str:
        """The endpoint's name in tables and JSON."""
        return self.name or f"gradio {self.api_name}"


class Target(_Strict):
    """The load the app must carry (``[target]``), checked after the matrix as ``--target-rate`` is.

    The rate and the p99 are read as the command line's options are (:func:`launcher.capacity.load.goal_from`).
    """

    rate: str | float
    route: str
    p99: str | float = "2s"

    _check_route = field_validator("route")(_path)


class ScenarioFile(_Strict):
    """A whole scenario file."""

    health: str = "/health"
    health_timeout: float = Field(default=30.0, gt=0, le=MAX_TIMEOUT_S)
    burst: list[Burst] = Field(default_factory=list)
    gradio: list[GradioEndpoint] = Field(default_factory=list)
    target: Target | None = None

    _check_health = field_validator("health")(_path)

    def overridden(self, *, n: int | None = None, repeats: int | None = None) -> ScenarioFile:
        """The file with every entry's ``n`` and ``repeats`` set from the command line (``-n``, ``-r``) where given."""
        update = {key: value for key, value in (("n", n), ("repeats", repeats)) if value is not None}
        if not update:
            return self
        return self.model_copy(
            update={
                "burst": [b.model_copy(update=update) for b in self.burst],
                "gradio": [g.model_copy(update=update) for g in self.gradio],
            }
        )

    @property
    def labels(self) -> list[str]:
        """Every route's label, in file order (bursts, then Gradio endpoints)."""
        return [b.label for b in self.burst] + [g.label for g in self.gradio]


def _key(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _lookup(data: Any, loc: tuple[int | str, ...]) -> tuple[bool, Any]:
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return False, None
    return True, data


def load_scenario_file(path: Path) -> ScenarioFile:
    """Read and check ``path``; :class:`ScenarioFileError` (one line) on any mistake."""
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ScenarioFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ScenarioFileError(f"{path}: not valid TOML: {' '.join(str(exc).split())}") from None
    try:
        scenario = ScenarioFile.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(error["loc"])
        found, value = _lookup(data, loc)
        shown = f" = {value!r}" if found else ""
        message = error["msg"].removeprefix("Value error, ")
        raise ScenarioFileError(f"{path}: {_key(loc)}{shown}: {message}") from None
    if not scenario.burst and not scenario.gradio:
        raise ScenarioFileError(f"{path}: no [[burst]] or [[gradio]] entry: nothing to probe")
    labels = scenario.labels
    duplicate = next((label for label in labels if labels.count(label) > 1), None)
    if duplicate is not None:
        raise ScenarioFileError(f"{path}: name = {duplicate!r} is used twice: give each burst its own name")
    return scenario
