"""``launch probe --app MODULE:ATTR --scenarios FILE``: the user's own service, route by route."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from launcher import interrupts
from launcher.child import DEFAULT_START_TIMEOUT
from launcher.cli._common import console, fail, fail_with
from launcher.cli.compare import finish
from launcher.errors import ExitCode, LaunchError, one_line
from profiles import Catalog

if TYPE_CHECKING:
    from launcher.compare.load import Loaded
    from launcher.probe.appprobe import AppProbeRun
    from launcher.userapp import AppSpec


def probe_user_app(
    catalog: Catalog,
    *,
    spec: str | None,
    app: AppSpec,
    scenarios: str | None,
    json_path: Path | None,
    html_path: Path | None = None,
    profiles_files: tuple[Path, ...],
    quiet: bool,
    baseline: Loaded | None = None,
    fail_on: str = "verdict",
    allow_different_machine: bool = False,
    target: tuple[str | None, str | None, str | None] = (None, None, None),
    requests: int | None = None,
    repeat: int | None = None,
    start_timeout: float = DEFAULT_START_TIMEOUT,
) -> None:
    """Check the app and the scenario file, probe every selected profile, print the per-route table.

    With a target (``--target-rate``, ``--route``, ``--p99``, each else from the scenario file's ``[target]``),
    every fit profile is then held at the user's rate (:func:`launcher.capacity.load.check_app_load`).
    ``requests`` and ``repeat`` (``-n``, ``-r``), when given, override every entry's ``n`` and ``repeats``.
    """
    from launcher.capacity.load import check_app_load, demo_clicks, goal_from
    from launcher.capacity.runner import check_route
    from launcher.probe.appprobe import print_stderr, probe_app, qualifying, run_to_json
    from launcher.probe.html import render_app_html
    from launcher.probe.report import render_app_run
    from launcher.probe.scenario_file import load_scenario_file
    from launcher.probe.store import ResultWriteError, write_atomically
    from launcher.userapp import check

    if not scenarios:
        fail("--app needs --scenarios FILE (a TOML scenario file: see examples/shop.toml)", ExitCode.USAGE)
    for option, path in (("--json", json_path), ("--html", html_path)):
        if path is not None and path.parent and not path.parent.is_dir():
            fail(f"{option}: folder {str(path.parent)!r} does not exist", ExitCode.USAGE)
    run: AppProbeRun | None = None

    def keep() -> str:
        """Write what was measured before a failure or Ctrl-C (the matrix, without the load check)."""
        if run is None or json_path is None:
            return ""
        try:  # atomically, as the reference probe writes: a reader never sees half a file
            write_atomically(json_path, json.dumps(run_to_json(run), indent=2) + "\n")
        except ResultWriteError:
            return ""
        return f"; the probe's results written to {json_path}"

    # Ctrl-C and SIGTERM end the run in any phase, the load check's included (launcher.interrupts, as the
    # reference probe): the servers stopped, what was measured kept.
    with interrupts.stop_signals():
        try:
            scenario_path = Path(scenarios)
            scenario = load_scenario_file(scenario_path).overridden(n=requests, repeats=repeat)
            rate, route, p99 = target
            goal = goal_from(rate, route, p99, app=True, file_target=scenario.target, file_label=str(scenario_path))
            chosen = catalog.select(spec)
            # Once, here: a bad --app, or a --route it does not serve, is one line before any server starts.
            shape = check(app)
            if goal is not None:
                check_route(app, goal.route, shape)
            say = (lambda line: None) if quiet else print_stderr
            run = probe_app(chosen, app, scenario, scenario_path, shape=shape, profiles_files=profiles_files, say=say)
            if goal is not None:
                fit = {r.profile for r in qualifying(run.profiles, serves_demo=shape.serves_demo)}
                decision = check_app_load(
                    [p for p in chosen if p.name in fit],
                    goal,
                    app=app,
                    health_path=scenario.health,
                    clicks=demo_clicks(scenario, shape, app, scenario_path),
                    cores=len(os.sched_getaffinity(0)),
                    profiles_files=profiles_files,
                    start_timeout=start_timeout,
                    progress=lambda line: say(f"load: {line}"),
                )
                run = dataclasses.replace(run, load=decision)
        except LaunchError as exc:
            fail(f"{one_line(str(exc))}{keep()}", exc.exit_code)
        except KeyboardInterrupt:
            fail(f"interrupted{keep()}", ExitCode.INTERRUPTED)
    assert run is not None
    if json_path is not None:
        try:  # atomically, as the reference probe writes: a reader never sees half a file
            write_atomically(json_path, json.dumps(run_to_json(run), indent=2) + "\n")
        except ResultWriteError as exc:
            fail_with(exc, "--json: ")
    render_app_run(run, console())
    if html_path is not None:
        try:
            write_atomically(html_path, render_app_html(run))
        except ResultWriteError as exc:
            fail_with(exc, "--html: ")
    if baseline is not None:
        finish(
            baseline,
            run,
            label=str(json_path) if json_path else "this run",
            fail_on=fail_on,
            allow_different_machine=allow_different_machine,
            html_path=html_path,
        )
    if run.recommendation.profile is None:
        sys.exit(ExitCode.NONE_FIT)
    if run.load is not None and run.load.chosen is None:
        sys.exit(ExitCode.TARGET_NOT_CARRIED)
