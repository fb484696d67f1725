"""The user's own ASGI app (``--app MODULE:ATTR``): where it is, how workers load it, how it is checked first.

Workers are spawned or forked by the backend and re-import the served factory
(:func:`launcher.asgi.create_app`) by name, so the app's import string travels
as environment variables (:meth:`AppSpec.to_env`) and each worker imports it
itself, the way ``uvicorn module:attr`` does. Before any server starts, the
launcher imports it once in a throw-away interpreter (:func:`check`): a module
that does not import, a missing attribute, something that is not an ASGI app or
a factory that raises is then one line and exit 2, not a traceback per worker.
The check also reports the app's shape (:class:`AppShape`): where it mounts a
Gradio demo, so that the probe clicks the demo wherever it
is, checks the scenario's event names before any server starts, and knows
the app serves a demo at all (:func:`demo_mounts`).
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from launcher.errors import ConfigError, one_line

APP_ENV = "LAUNCH_APP"
FACTORY_ENV = "LAUNCH_APP_FACTORY"
APP_DIR_ENV = "LAUNCH_APP_DIR"
CHECK_TIMEOUT_S = 60.0
"""How long importing the user's app (and calling its factory) may take in the check."""
SHAPE_PREFIX = "launch-app-shape: "
"""The check's report line on its standard output (the user's module may print too)."""


class AppLoadError(ConfigError):
    """The user's app cannot be imported or is not an ASGI app (one line)."""


@dataclass(frozen=True, kw_only=True)
class AppSpec:
    """``MODULE:ATTR``, whether ATTR is a factory, and the folder to import it from."""

    target: str
    factory: bool = False
    app_dir: str | None = None

    def __post_init__(self) -> None:
        module, sep, attr = self.target.partition(":")
        if not sep or not module or not attr:
            raise AppLoadError(f"--app {self.target!r}: expected MODULE:ATTR, e.g. myservice.main:app")

    @property
    def module(self) -> str:
        """The module part of the import string."""
        return self.target.partition(":")[0]

    @property
    def attr(self) -> str:
        """The attribute part (dotted names allowed, as in uvicorn)."""
        return self.target.partition(":")[2]

    def to_env(self) -> dict[str, str]:
        """The variables :meth:`from_env` reads back in a worker."""
        env = {APP_ENV: self.target, FACTORY_ENV: "1" if self.factory else "0"}
        if self.app_dir is not None:
            env[APP_DIR_ENV] = str(Path(self.app_dir).resolve())
        return env

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AppSpec | None:
        """The user's app named in the environment, or None (the reference service)."""
        env = os.environ if environ is None else environ
        target = env.get(APP_ENV, "")
        if not target:
            return None
        return cls(target=target, factory=env.get(FACTORY_ENV) == "1", app_dir=env.get(APP_DIR_ENV) or None)

    def cli_args(self) -> list[str]:
        """The ``launch`` options that name this app (for a child or a unit)."""
        args = ["--app", self.target]
        if self.factory:
            args.append("--factory")
        if self.app_dir is not None:
            args += ["--app-dir", str(Path(self.app_dir).resolve())]
        return args


def is_asgi_app(obj: object) -> bool:
    """An async callable: a coroutine function, or an object whose ``__call__`` is one (FastAPI, Starlette)."""
    if inspect.iscoroutinefunction(obj):
        return True
    call = getattr(obj, "__call__", None)  # noqa: B004 - the bound method itself is inspected
    return not inspect.isclass(obj) and call is not None and inspect.iscoroutinefunction(call)


def load(spec: AppSpec) -> Any:
    """Import and return the user's ASGI app; :class:`AppLoadError` (one line) when it cannot be had."""
    if spec.app_dir is not None:
        folder = str(Path(spec.app_dir).resolve())
        if folder not in sys.path:
            sys.path.insert(0, folder)
    elif "" not in sys.path and os.getcwd() not in sys.path:
        # As uvicorn does: the working folder is importable.
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(spec.module)
    except Exception as exc:
        if isinstance(exc, ModuleNotFoundError) and exc.name == spec.module:
            raise AppLoadError(f"--app {spec.target}: no module named {spec.module!r}") from None
        raise AppLoadError(f"--app {spec.target}: importing {spec.module} failed: {_described(exc)}") from None
    obj: Any = module
    for part in spec.attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AppLoadError(f"--app {spec.target}: module {spec.module} has no attribute {spec.attr!r}") from None
    if spec.factory:
        if not callable(obj):
            raise AppLoadError(f"--app {spec.target} --factory: {spec.attr} is not callable")
        try:
            obj = obj()
        except Exception as exc:
            raise AppLoadError(f"--app {spec.target} --factory: the factory raised {_described(exc)}") from None
    if not is_asgi_app(obj):
        hint = " (a factory? add --factory)" if callable(obj) and not spec.factory else ""
        raise AppLoadError(
            f"--app {spec.target}: {spec.attr} is a {type(obj).__name__}, not an ASGI app "
            f"(an async callable taking scope, receive, send){hint}"
        )
    return obj


@dataclass(frozen=True, kw_only=True)
class DemoMount:
    """A Gradio demo the app mounts: where, and the API names of its events (``/predict``)."""

    path: str
    """``/`` for the root (``gr.mount_gradio_app(app, demo, path="/")``), else ``/demo``."""
    api_names: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class AppShape:
    """What the launcher needs to know of the user's app without importing it into its own process."""

    demos: tuple[DemoMount, ...] = ()
    api_paths: tuple[str, ...] = ()
    """The app's own routes outside its demos, as path patterns (``/items/*`` for ``/items/{id}``): what the split
    topology's front sends to the API group when a demo is mounted at ``/``."""

    @property
    def serves_demo(self) -> bool:
        """True when the app mounts a Gradio demo anywhere."""
        return bool(self.demos)

    @property
    def demo_paths(self) -> tuple[str, ...]:
        """Where the demos are mounted, in route order."""
        return tuple(d.path for d in self.demos)

    @property
    def routes_known(self) -> bool:
        """True when the app listed its routes (a Starlette or FastAPI app); a bare ASGI callable lists none."""
        return bool(self.api_paths or self.demos)

    def has_route(self, path: str) -> bool:
        """True when ``path`` (no query) is one of the app's routes or lies under one of its demos or mounts.

        Only meaningful when :attr:`routes_known`; a pattern ending in ``*`` matches its prefix.
        """
        for pattern in self.api_paths:
            if path == pattern or (pattern.endswith("*") and path.startswith(pattern[:-1])):
                return True
        return any(demo in ("/", path) or path.startswith(demo.rstrip("/") + "/") for demo in self.demo_paths)


def _gradio_api_names(gradio_app: Any) -> tuple[str, ...]:
    blocks = gradio_app.get_blocks()
    names = (getattr(fn, "api_name", None) for fn in getattr(blocks, "fns", {}).values())
    return tuple(f"/{name}" for name in names if isinstance(name, str) and name)


def _is_gradio_app(obj: object) -> bool:
    # Gradio's own ASGI app (gradio.routes.App) is what mount_gradio_app mounts; known by its module and its
    # get_blocks method, so that an app without Gradio never imports it here.
    return type(obj).__module__.startswith("gradio.") and callable(getattr(obj, "get_blocks", None))


def demo_mounts(app: object, prefix: str = "") -> tuple[DemoMount, ...]:
    """The Gradio demos ``app`` (a Starlette/FastAPI app, mounts followed) serves, in route order.

    Starlette stores a mount at ``/`` with an empty path; it is returned as ``/``.
    """
    if _is_gradio_app(app):
        return (DemoMount(path=prefix or "/", api_names=_gradio_api_names(app)),)
    found: list[DemoMount] = []
    for route in getattr(app, "routes", None) or ():
        mounted = getattr(route, "app", None)
        path = getattr(route, "path", None)
        if mounted is None or not isinstance(path, str) or type(route).__name__ != "Mount":
            continue
        found.extend(demo_mounts(mounted, prefix + path.rstrip("/")))
    return tuple(found)


def route_pattern(path: str) -> str:
    """A route's path as a front's path pattern: exact, or a prefix ending in ``*`` from its first parameter on."""
    head, brace, _ = path.partition("{")
    return head + "*" if brace else (path or "/")


def api_paths(app: object, prefix: str = "") -> tuple[str, ...]:
    """Path patterns of ``app``'s routes that are not a Gradio demo's, mounts followed, in route order.

    A mount that holds no demo is taken whole (``/static/*``): what it serves is its own business.
    """
    if _is_gradio_app(app):
        return ()
    found: list[str] = []
    for route in getattr(app, "routes", None) or ():
        path = getattr(route, "path", None)
        if not isinstance(path, str):
            continue
        mounted = getattr(route, "app", None)
        if type(route).__name__ == "Mount" and mounted is not None:
            if demo_mounts(mounted):
                found.extend(api_paths(mounted, prefix + path.rstrip("/")))
            elif prefix + path:
                found.append(prefix + path.rstrip("/") + "/*")
            continue
        pattern = route_pattern(prefix + path)
        if pattern not in found:
            found.append(pattern)
    return tuple(found)


def _described(exc: BaseException) -> str:
    text = one_line(str(exc))
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def check(spec: AppSpec, *, timeout: float = CHECK_TIMEOUT_S) -> AppShape:
    """Load the app in a separate interpreter: its shape, or :class:`AppLoadError` with its one line.

    A separate process: the user's module must not be imported into the
    launcher itself (its import-time side effects, threads or a loaded model
    would be forked into every gunicorn worker).
    """
    env = {**os.environ, **spec.to_env()}
    code = "import sys, launcher.userapp as u; sys.exit(u.check_main())"
    try:
        done = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise AppLoadError(f"--app {spec.target}: importing it took more than {timeout:g} s") from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise AppLoadError(lines[-1] if lines else f"--app {spec.target}: the check exited with {done.returncode}")
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(SHAPE_PREFIX):
            data = json.loads(line[len(SHAPE_PREFIX) :])
            return AppShape(
                demos=tuple(
                    DemoMount(path=str(d["path"]), api_names=tuple(str(n) for n in d["api_names"]))
                    for d in data["demos"]
                ),
                api_paths=tuple(str(p) for p in data.get("api_paths", ())),
            )
    return AppShape()


def check_main() -> int:
    """The check's child: load the app named in the environment; its shape on stdout, or one line on stderr."""
    spec = AppSpec.from_env()
    if spec is None:
        return 0
    try:
        app = load(spec)
    except AppLoadError as exc:
        sys.stderr.flush()
        print(str(exc), file=sys.stderr)
        return 2
    demos = [{"path": d.path, "api_names": list(d.api_names)} for d in demo_mounts(app)]
    print(SHAPE_PREFIX + json.dumps({"demos": demos, "api_paths": list(api_paths(app))}), flush=True)
    return 0
