"""``launch probe``: start profiles, fire real bursts at them, judge and recommend."""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from app.settings import MAX_SECONDS, MAX_STEPS
from launcher import interrupts
from launcher.child import DEFAULT_START_TIMEOUT
from launcher.cli._common import app_options, catalog_from, console, fail, fail_with, user_app_from
from launcher.cli.compare import baseline_options, finish, read_baseline
from launcher.errors import ExitCode, LaunchError, one_line
from launcher.probe.limits import DEFAULT_REPEATS, MAX_REPEATS, MAX_REQUESTS, in_default_run

if TYPE_CHECKING:
    from launcher.capacity.load import LoadGoal
    from launcher.probe.model import ProbeRun, ProfileResult
    from launcher.probe.scenarios import ProbeOptions


@click.command()
@click.option(
    "--profiles",
    "spec",
    metavar="SPEC",
    help="Comma-separated names or globs (default: every profile but the Ray and split ones, probed when named).",
)
@click.option(
    "--scenarios",
    metavar="LIST",
    help="Comma-separated: sleep, cpu, generate, mixed, liveness, timeout, noawait (the default: all of these), "
    "slowclients (by name only); with --app: a TOML FILE.",
)
@app_options(app_help="Probe your own ASGI app (with --scenarios FILE).")
@click.option(
    "--requests", "-n", type=click.IntRange(1, MAX_REQUESTS), default=3, show_default=True, help="N per burst."
)
@click.option("--seconds", "-s", type=click.FloatRange(0, MAX_SECONDS, min_open=True), default=1.0, show_default=True)
@click.option("--seed-durations", is_flag=True, help="The write-up's 10 s sleeps and ~8 s CPU loops.")
@click.option(
    "--repeat",
    "-r",
    type=click.IntRange(1, MAX_REPEATS),
    default=DEFAULT_REPEATS,
    show_default=True,
    help="Fire every burst R times: figures become medians with a spread, verdicts must hold in every repeat.",
)
@click.option("--details", is_flag=True, help="Also print every expectation of every profile and the full evidence.")
@click.option(
    "--steps", type=click.IntRange(1, MAX_STEPS), default=4, show_default=True, help="Denoising steps per generation."
)
@click.option("--concurrency-limit", type=click.IntRange(1), help="Override every profile's concurrency_limit.")
@click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False), help="Write the full result.")
@click.option(
    "--html",
    "html_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write a self-contained HTML report (also after Ctrl-C: partial, marked incomplete).",
)
@click.option("--keep-going/--fail-fast", default=True, show_default=True)
@click.option(
    "--resume",
    "resume_path",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="FILE",
    help="Continue the incomplete run saved in FILE (its --json): skip finished profiles, same options.",
)
@click.option("--force", is_flag=True, help="Run even when a profile is estimated not to fit in available memory.")
@click.option("--claims", "claims_only", is_flag=True, help="Print only the write-up's claims and the recommendation.")
@click.option("--start-timeout", type=click.FloatRange(1), default=DEFAULT_START_TIMEOUT, show_default=True)
@click.option(
    "--target-rate",
    help="Your load, e.g. 4.5/s or 300/min: after the matrix every fit profile is held at this rate (open loop, "
    "the demo clicked meanwhile) and the simplest that carries it is recommended.",
)
@click.option(
    "--route",
    help="With --target-rate: the path and query to load: /generate (the default), /test1, /test2 or /ping; "
    "with --app, a GET route of your app (required).",
)
@click.option("--p99", "p99", help="With --target-rate: the p99 latency target (ms or s; default 2s).")
@click.option(
    "--quiet", "-q", is_flag=True, help="No progress (it goes to stderr: live on a terminal, lines otherwise)."
)
@baseline_options
@click.pass_context
def probe(
    ctx: click.Context,
    spec: str | None,
    scenarios: str | None,
    requests: int,
    seconds: float,
    seed_durations: bool,
    repeat: int,
    details: bool,
    steps: int,
    concurrency_limit: int | None,
    json_path: Path | None,
    html_path: Path | None,
    keep_going: bool,
    resume_path: Path | None,
    force: bool,
    claims_only: bool,
    start_timeout: float,
    target_rate: str | None,
    route: str | None,
    p99: str | None,
    quiet: bool,
    app_target: str | None,
    factory: bool,
    app_dir: str | None,
    baseline_path: Path | None,
    fail_on: str,
    allow_different_machine: bool,
) -> None:
    """Start each profile, hit it the way real users do, and judge what happened.

    The result (--json, --html) is saved after every profile, atomically and
    marked incomplete until the end; --resume FILE continues an interrupted
    run. Exit status: 0 every expectation held and a profile is recommended,
    1 some expectation failed, 5 a profile did not start (and nothing failed),
    7 no profile is fit to serve, 8 a profile would not fit in memory
    (--force), 9 with --target-rate, no fit profile carries it, 2 usage
    error or unwritable file, 130 interrupted. With
    --baseline BASE.json the run is then compared with BASE (see launch
    compare) and the exit status is compare's: 0, 1 a regression, 2 not
    comparable.
    """
    from launcher.compare.model import ResultKind
    from launcher.probe.memory import check_fits
    from launcher.probe.model import Status
    from launcher.probe.progress import ProbeProgress
    from launcher.probe.report import claims_table, recommendation_text, render_run
    from launcher.probe.runner import run_probe
    from launcher.probe.scenarios import SCENARIOS, ProbeOptions, ProfileTarget, deferred_plan
    from launcher.probe.store import ResultWriteError

    catalog = catalog_from(ctx)
    user_app = user_app_from(app_target, factory, app_dir)
    # With --app, the scenario file's [target] may state the load: read with it (launcher.cli._appprobe).
    goal = load_goal(target_rate, route, p99, app=False) if user_app is None else None
    if goal is not None and claims_only:
        fail(
            "--target-rate does not go with --claims: the claims are the write-up's, the target is yours",
            ExitCode.USAGE,
        )
    baseline = read_baseline(baseline_path, ResultKind.APP if user_app is not None else ResultKind.PROBE)
    if user_app is not None:
        from launcher.cli._appprobe import probe_user_app

        # Rejected, never dropped: the scenario file decides what these decide for the reference service.
        given = [
            param.opts[0] for param in ctx.command.params if param.name in REFERENCE_ONLY and _given(ctx, param.name)
        ]
        if given:
            fail(
                f"{', '.join(given)}: not with --app (options of the reference service's scenarios; your scenario "
                "file describes your app's)",
                ExitCode.USAGE,
            )

        probe_user_app(
            catalog,
            spec=spec,
            app=user_app,
            scenarios=scenarios,
            json_path=json_path,
            html_path=html_path,
            profiles_files=tuple(ctx.find_root().params.get("profiles_file") or ()),
            quiet=quiet,
            baseline=baseline,
            fail_on=fail_on,
            allow_different_machine=allow_different_machine,
            target=(target_rate, route, p99),
            requests=requests if _given(ctx, "requests") else None,
            repeat=repeat if _given(ctx, "repeat") else None,
            start_timeout=start_timeout,
        )
        return
    done: tuple[ProfileResult, ...] = ()
    try:
        chosen = catalog.select(spec)
        if not spec:
            # Ray profiles start a Ray instance each (30-50 s, several processes on top of the
            # replicas): probed when named (`--profiles 'ray*'`), not in the default run.
            # Split-topology profiles (N+1 servers and Caddy each) stay opt-in too until the default run,
            # with them added, is measured within its time budget (docs/split.md).
            chosen = [p for p in chosen if in_default_run(p)]
        names = tuple(s.strip() for s in scenarios.split(",") if s.strip()) if scenarios else SCENARIOS
        common: dict[str, Any] = {
            "scenarios": names,
            "requests": requests,
            "repeat": repeat,
            "steps": steps,
            "fail_fast": not keep_going,
            "start_timeout": start_timeout,
        }
        options = ProbeOptions.seeded(**common) if seed_durations else ProbeOptions(seconds=seconds, **common)
        plan = run_plan(options, [p.name for p in chosen], concurrency_limit)
        if resume_path is not None:
            previous = read_resumable(resume_path)
            refuse_other_options(ctx, resume_path, plan, previous.options)
            plan = {key: previous.options[key] for key in plan}
            options = ProbeOptions(
                scenarios=tuple(plan["scenarios"]),
                requests=plan["requests"],
                seconds=plan["seconds"],
                cpu_seconds=plan["cpu_seconds"],
                steps=plan["steps"],
                fail_fast=plan["fail_fast"],
                start_timeout=plan["start_timeout"],
                # The same CPU loop calibration, so that the new profiles' work matches the old ones'.
                cpu_rate=previous.machine.get("cpu_rate"),
            )
            done = tuple(p for p in previous.profiles if p.status != Status.INTERRUPTED)
            finished = {p.name for p in done}
            chosen = [catalog.get_profile(name) for name in plan["profiles"] if name not in finished]
            json_path = json_path or resume_path
        limit = plan["concurrency_limit"]
        targets = [
            ProfileTarget(
                profile=p.replace(concurrency_limit=limit) if limit else p,
                source=catalog[p.name].source,
            )
            for p in chosen
        ]
    except LaunchError as exc:
        fail_with(exc)
    for option, path in (("--json", json_path), ("--html", html_path)):
        if path is not None and path.parent and not path.parent.is_dir():
            fail(f"{option}: folder {str(path.parent)!r} does not exist", ExitCode.USAGE)
    if not force:
        try:
            check_fits([t.profile for t in targets])
        except LaunchError as exc:
            fail_with(exc)
    latest: list[ProbeRun] = []

    def checkpoint(run: ProbeRun) -> None:
        run = with_plan(run, plan)
        latest[:] = [run]
        write_results(run, json_path=json_path, html_path=html_path)

    failed_write: ResultWriteError | None = None
    written = ""
    # Ctrl-C and SIGTERM end the run in any phase, the final write included: the servers stopped, the results so
    # far kept. A signal is recorded as well as raised (launcher.interrupts), so nothing on the way can lose it.
    with interrupts.stop_signals():
        try:
            deferred = deferred_plan(targets, options.scenarios)
            with ProbeProgress(
                console(stderr=True),
                mode="off" if quiet else "auto",
                deferred=deferred.count,
                deferred_seconds=deferred.seconds,
                cores=len(os.sched_getaffinity(0)),
            ) as display:
                measured = run_probe(targets, options, progress=display.update, on_profile=checkpoint, done=done)
            run = with_plan(measured, plan)
            if goal is not None and run.complete:
                latest[:] = [run]  # what an interrupted load check keeps
                run = with_load(run, goal, start_timeout=start_timeout, quiet=quiet)
        except ResultWriteError as exc:
            # A checkpoint could not be saved: stop rather than measure for nothing; show what was measured.
            failed_write = exc
            run = latest[0]  # set before each checkpoint is written
        except KeyboardInterrupt:
            # run_probe keeps what it measured on Ctrl-C; this is a signal in its last instructions.
            if not latest:
                fail("interrupted", ExitCode.INTERRUPTED)
            run = dataclasses.replace(latest[0], complete=False)
        if failed_write is None:
            try:
                if run.complete:
                    interrupts.reached("write")
                written = write_results(run, json_path=json_path, html_path=html_path)
            except ResultWriteError as exc:
                failed_write = exc
            except KeyboardInterrupt:
                # During the final write: the file of the last checkpoint (marked incomplete) stays, whole.
                fail("interrupted while writing the results; the last checkpoint is kept", ExitCode.INTERRUPTED)
        # Wide tables rather than wrapped ones when the output is a log, not a terminal.
        out = console()
        try:
            if claims_only:
                out.print(claims_table(run))
                out.print(recommendation_text(run))
            else:
                render_run(run, out, details=details)
        except KeyboardInterrupt:
            fail("interrupted" + (f"; results written to {written}" if written else ""), ExitCode.INTERRUPTED)
        signalled = interrupts.stopped() is not None
    if failed_write is not None:
        fail_with(failed_write)
    if not run.complete or signalled:
        fail("interrupted; partial results" + (f" written to {written}" if written else ""), ExitCode.INTERRUPTED)
    if baseline is not None:
        finish(
            baseline,
            run,
            label=str(json_path) if json_path else "this run",
            fail_on=fail_on,
            allow_different_machine=allow_different_machine,
            html_path=html_path,
        )
    if any(p.status == Status.OK and not p.passed for p in run.profiles):
        sys.exit(ExitCode.EXPECTATION_FAILED)
    if any(p.status != Status.OK for p in run.profiles):
        sys.exit(ExitCode.NOT_STARTED)
    if run.recommendation is None and run.profiles:
        sys.exit(ExitCode.NONE_FIT)
    if run.load is not None and run.load.chosen is None:
        sys.exit(ExitCode.TARGET_NOT_CARRIED)


REFERENCE_ONLY = (
    "seconds",
    "seed_durations",
    "details",
    "steps",
    "concurrency_limit",
    "keep_going",
    "resume_path",
    "force",
    "claims_only",
)
"""``launch probe`` options of the reference service's scenarios only: given with ``--app``, one line and exit 2
(``-n`` and ``-r`` apply to an app's scenario file: they override every entry's ``n`` and ``repeats``)."""


def _given(ctx: click.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source not in (
        click.core.ParameterSource.DEFAULT,
        click.core.ParameterSource.DEFAULT_MAP,
    )


def load_goal(target_rate: str | None, route: str | None, p99: str | None, *, app: bool) -> LoadGoal | None:
    """The user's load from ``--target-rate``, ``--route`` and ``--p99``; one line and exit 2 when it is unusable."""
    from launcher.capacity.load import goal_from

    try:
        return goal_from(target_rate, route, p99, app=app)
    except LaunchError as exc:
        fail_with(exc)


def with_load(run: ProbeRun, goal: LoadGoal, *, start_timeout: float, quiet: bool) -> ProbeRun:
    """``run`` with its fit profiles held at the goal's rate and the decision (:mod:`launcher.capacity.load`)."""
    from launcher.capacity.load import check_load

    def progress(line: str) -> None:
        if not quiet:
            click.echo(f"load: {line}", err=True)

    decision = check_load(run, goal, cores=len(os.sched_getaffinity(0)), start_timeout=start_timeout, progress=progress)
    return dataclasses.replace(run, load=decision)


RESUME_KEYS: dict[str, tuple[str, ...]] = {
    "spec": ("profiles",),
    "scenarios": ("scenarios",),
    "requests": ("requests",),
    "seconds": ("seconds", "cpu_seconds"),
    "seed_durations": ("seconds", "cpu_seconds"),
    "steps": ("steps",),
    "concurrency_limit": ("concurrency_limit",),
    "keep_going": ("fail_fast",),
    "start_timeout": ("start_timeout",),
}
"""Which entries of a run's options each command-line option decides; --resume compares those given."""


def run_plan(options: ProbeOptions, profiles: list[str], concurrency_limit: int | None) -> dict[str, Any]:
    """Everything that decides what a run measures, as saved in its ``options``: what --resume repeats."""
    return {
        "profiles": profiles,
        "scenarios": list(options.scenarios),
        "requests": options.requests,
        "seconds": options.seconds,
        "cpu_seconds": options.cpu_s,
        "steps": options.steps,
        "concurrency_limit": concurrency_limit,
        "fail_fast": options.fail_fast,
        "start_timeout": options.start_timeout,
    }


def with_plan(run: ProbeRun, plan: dict[str, Any]) -> ProbeRun:
    """``run`` with the whole plan in its options (the runner records only the scenario settings)."""
    return dataclasses.replace(run, options={**run.options, **plan})


def read_resumable(path: Path) -> ProbeRun:
    """The incomplete run in ``path``; :class:`LaunchError` (one line) when it cannot be resumed."""
    from launcher.probe.model import ResultFileError, read_run

    try:
        run = read_run(path)
    except ResultFileError as exc:
        raise LaunchError(f"--resume: {path}: {one_line(str(exc))}") from None
    if run.complete:
        raise LaunchError(f"--resume: {path} is a complete run; nothing to resume (`launch report {path}` shows it)")
    missing = [key for key in RESUME_KEYS_ALL if key not in run.options]
    if missing:
        raise LaunchError(f"--resume: {path} does not record its {missing[0]!r} option (an older launch); run afresh")
    return run


RESUME_KEYS_ALL = tuple(dict.fromkeys(key for keys in RESUME_KEYS.values() for key in keys))


def refuse_other_options(ctx: click.Context, path: Path, plan: dict[str, Any], saved: dict[str, Any]) -> None:
    """:class:`LaunchError` naming the first option given on the command line that differs from the saved run's."""
    for param, keys in RESUME_KEYS.items():
        if ctx.get_parameter_source(param) in (None, click.core.ParameterSource.DEFAULT):
            continue
        for key in keys:
            if plan[key] != saved[key]:
                raise LaunchError(
                    f"--resume: {path} was run with {key} = {saved[key]!r}, not {plan[key]!r}; "
                    "resume with the same options (or leave them out), or start a new run"
                )


def write_results(run: ProbeRun, *, json_path: Path | None, html_path: Path | None) -> str:
    """Write the result file and the HTML report asked for, each atomically; returns their names, for messages.

    :class:`launcher.probe.store.ResultWriteError` when one cannot be written
    (the previous file of that name is then left as it was).
    """
    from launcher.probe.html import render_html
    from launcher.probe.model import dump_run
    from launcher.probe.store import write_atomically

    written = []
    for path, render in ((json_path, dump_run), (html_path, render_html)):
        if path is None:
            continue
        write_atomically(path, render(run) + ("\n" if path == json_path else ""))
        written.append(str(path))
    return " and ".join(written)
