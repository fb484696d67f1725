"""``launch probe --app MODULE:ATTR --scenarios FILE``: the user's own service, route by route."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rich.table import Table

from launcher.child import DEFAULT_START_TIMEOUT
from launcher.cli._common import console, fail, fail_with
from launcher.cli.compare import finish
from launcher.errors import ExitCode, LaunchError
from profiles import Catalog

if TYPE_CHECKING:
    from launcher.capacity.load import LoadGoal
    from launcher.compare.load import Loaded
    from launcher.userapp import AppSpec


def probe_user_app(
    catalog: Catalog,
    *,
    spec: str | None,
    app: AppSpec,
    scenarios: str | None,
    json_path: Path | None,
    profiles_files: tuple[Path, ...],
    quiet: bool,
    baseline: Loaded | None = None,
    fail_on: str = "verdict",
    allow_different_machine: bool = False,
    goal: LoadGoal | None = None,
    start_timeout: float = DEFAULT_START_TIMEOUT,
) -> None:
    """Check the app and the scenario file, probe every selected profile, print the per-route table.

    With ``goal``, every fit profile is then held at the user's rate (:func:`launcher.capacity.load.check_app_load`).
    """
    from launcher.capacity.load import check_app_load, demo_clicks
    from launcher.capacity.runner import check_route
    from launcher.probe.appprobe import describe, print_stderr, probe_app, qualifying, run_to_json
    from launcher.probe.report import load_text
    from launcher.probe.scenario_file import load_scenario_file
    from launcher.userapp import check

    if not scenarios:
        fail("--app needs --scenarios FILE (a TOML scenario file: see examples/shop.toml)", ExitCode.USAGE)
    if json_path is not None and json_path.parent and not json_path.parent.is_dir():
        fail(f"--json: folder {str(json_path.parent)!r} does not exist", ExitCode.USAGE)
    try:
        scenario_path = Path(scenarios)
        scenario = load_scenario_file(scenario_path)
        chosen = catalog.select(spec)
        # Once, here: a bad --app, or a --route it does not serve, is one line before any server starts.
        shape = check(app)
        if goal is not None:
            check_route(app, goal.route, shape)
        say = (lambda line: None) if quiet else print_stderr
        run = probe_app(chosen, app, scenario, scenario_path, shape=shape, profiles_files=profiles_files, say=say)
        if goal is not None:
            fit = {r.profile for r in qualifying(run.profiles, serves_demo=shape.serves_demo)}
            run = dataclasses.replace(
                run,
                load=check_app_load(
                    [p for p in chosen if p.name in fit],
                    goal,
                    app=app,
                    health_path=scenario.health,
                    clicks=demo_clicks(scenario, shape, app, scenario_path),
                    cores=len(os.sched_getaffinity(0)),
                    profiles_files=profiles_files,
                    start_timeout=start_timeout,
                    progress=lambda line: say(f"load: {line}"),
                ),
            )
    except LaunchError as exc:
        fail_with(exc)
    except KeyboardInterrupt:
        fail("interrupted", ExitCode.INTERRUPTED)
    if json_path is not None:
        from launcher.probe.store import ResultWriteError, write_atomically

        try:  # atomically, as the reference probe writes: a reader never sees half a file
            write_atomically(json_path, json.dumps(run_to_json(run), indent=2) + "\n")
        except ResultWriteError as exc:
            fail_with(exc, "--json: ")
    out = console()
    table = Table(title=f"{run.app}: per-route verdicts")
    table.add_column("route")
    table.add_column("request")
    for result in run.profiles:
        table.add_column(result.profile + (f" (= {', '.join(result.same_as)})" if result.same_as else ""))
    table.add_column("advice")
    for index, route in enumerate(run.profiles[0].routes if run.profiles else ()):
        cells = [describe(result.routes[index]) for result in run.profiles]
        worst = min((r.routes[index] for r in run.profiles), key=lambda r: _severity(r.route_class))
        table.add_row(route.route, route.request, *cells, worst.advice)
    out.print(table)
    recommendation = run.recommendation
    for name, why in recommendation.rejected.items():
        out.print(f"not recommended: {name}: {why}")
    if recommendation.profile is None:
        out.print("recommendation: none (no profile qualifies)")
    else:
        tied = f" (tied with {', '.join(recommendation.tied_with)})" if recommendation.tied_with else ""
        out.print(f"recommendation: {recommendation.profile}{tied}: {recommendation.reason}")
    if run.load is not None:
        out.print(load_text(run.load))
    if baseline is not None:
        finish(
            baseline,
            run,
            label=str(json_path) if json_path else "this run",
            fail_on=fail_on,
            allow_different_machine=allow_different_machine,
        )
    if recommendation.profile is None:
        sys.exit(ExitCode.NONE_FIT)
    if run.load is not None and run.load.chosen is None:
        sys.exit(ExitCode.TARGET_NOT_CARRIED)


def _severity(name: str) -> int:
    from launcher.probe.routes import CLASSES

    return CLASSES.index(name)
