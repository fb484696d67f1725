"""``python -m bench [--quick] [--only MEASURES] [--out FILE]``: run the benchmarks, print a table, write JSON."""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import attribution, capacity, clients, embedding, matrix, memory, startup, timing, topology
from bench.common import REPO, TIMES, Figure, MeasureResult, machine_facts
from bench.servers import launched

MEASURES = (
    "clients",
    "timing",
    "embedding",
    "attribution",
    "startup",
    "matrix",
    "versus",
    "memory",
    "capacity",
    "topology",
)
DEFAULT_OUT = REPO / "bench" / "results.json"
SCHEMA = "launch.bench"


def settings(quick: bool) -> dict[str, Any]:
    """Durations and repetitions: ``--quick`` keeps the whole run to a few minutes."""
    if quick:
        return {
            "load_s": 2.0,
            "load_reps": 1,
            "embed_reps": 2,
            "embed_rate_reps": 2,
            "embed_s": 2.0,
            "attr_reps": 3,
            "attr_s": 2.0,
            "cap_s": 2.0,
            "cap_reps": 1,
            "startup_reps": 2,
            "topo_reps": 2,
            "topo_s": 2.0,
        }
    return {
        "load_s": 4.0,
        "load_reps": 3,
        "embed_reps": 5,
        "embed_rate_reps": 5,
        "embed_s": 3.0,
        "attr_reps": 6,
        "attr_s": 3.0,
        "cap_s": 4.0,
        "cap_reps": 3,
        "startup_reps": 5,
    }


def setup_tools(console: Console) -> None:
    """Install wrk and hey where possible (bench/setup.sh); the bench skips a tool it cannot have."""
    script = REPO / "bench" / "setup.sh"
    try:
        out = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        console.print(f"[yellow]bench/setup.sh did not run: {exc}; missing tools are skipped[/]")
        return
    for line in (out.stdout + out.stderr).splitlines():
        if line.strip():
            console.print(f"[dim]{line.strip()}[/]")


def fmt_value(figure: Figure) -> str:
    value = figure.value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if figure.unit == TIMES:
        return f"{value:.3f}{TIMES}"
    if figure.unit == "ms":
        return f"{value:.2f} ms"
    if figure.unit == "MiB":
        return f"{value:.0f} MiB"
    return f"{value:.3g} {figure.unit}"


STYLE = {"PASS": "green", "MISS": "red", "SKIP": "yellow", "ERROR": "red", "INFO": "dim"}


def table(figures: list[Figure], title: str) -> Table:
    out = Table(title=title, show_lines=False)
    out.add_column("measure", no_wrap=True)
    out.add_column("figure")
    out.add_column("value", justify="right", no_wrap=True)
    out.add_column("target", no_wrap=True)
    out.add_column("result", no_wrap=True)
    out.add_column("detail", overflow="fold")
    for figure in figures:
        style = STYLE.get(figure.status, "")
        out.add_row(
            figure.measure,
            figure.name,
            fmt_value(figure),
            figure.target,
            f"[{style}]{figure.status}[/]" if style else figure.status,
            figure.detail,
        )
    return out


def in_brief(figure: Figure) -> bool:
    """The README's selection: every judged figure and the information that explains them."""
    if figure.status != "INFO":
        return True
    if figure.measure.startswith("1 "):
        return "c=50, pinned" in figure.name
    if figure.measure.startswith("7 "):
        return f"{max(capacity.RATES):g}/s" in figure.name
    if figure.measure.startswith("6 "):
        return "per worker" in figure.name or "-3-" in figure.name
    return "p50" not in figure.name


def markdown(payload: dict[str, Any], *, brief: bool = False) -> str:
    """The results as a Markdown table (for the README), from a results file's contents."""
    facts = payload["machine"]
    versions = facts.get("versions", {})
    shown = ("uvicorn", "gunicorn", "hypercorn", "aiohttp", "wrk", "hey")
    lines = [
        f"`python -m bench{' --quick' if payload.get('quick') else ''}`, {facts['date']}: {facts['cores']} cores "
        f"({facts['cpu_model']}), Python {facts['python']}, "
        + ", ".join(f"{k} {versions.get(k)}" for k in shown if versions.get(k))
        + f"; load average {facts['load_average_at_start'][0]:.1f} at the start (a shared machine).",
        "",
        "| measure | figure | value | target | result |",
        "| --- | --- | --- | --- | --- |",
    ]
    for raw in payload["figures"]:
        figure = Figure(**raw)
        if brief and not in_brief(figure):
            continue
        lines.append(f"| {figure.measure} | {figure.name} | {fmt_value(figure)} | {figure.target} | {figure.status} |")
    return "\n".join(lines)


def _clean(value: Any) -> Any:
    """JSON has no NaN: NaN becomes null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def write_results(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(_clean(payload), indent=1, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def merged(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``old`` with the figures and raw data of ``new``'s measures replaced; the merge recorded under ``merges``.

    For adding a measure's rows without re-running the whole bench: the
    machine facts stay those of the full run, the merged measure keeps its
    own date and load average in ``merges``.
    """
    labels = {f["measure"] for f in new["figures"]}
    figures = [f for f in old["figures"] if f["measure"] not in labels] + new["figures"]
    merges = [m for m in old.get("merges", []) if not set(m["measures"]) <= set(new["measures"])]
    merges.append(
        {
            "measures": new["measures"],
            "date": new["machine"]["date"],
            "load_average_at_start": new["machine"]["load_average_at_start"],
            "settings": new["settings"],
        }
    )
    counts = {s: sum(1 for f in figures if f["status"] == s) for s in ("PASS", "MISS", "SKIP", "ERROR")}
    return {
        **old,
        "measures": [*old["measures"], *(m for m in new["measures"] if m not in old["measures"])],
        "settings": {**old["settings"], **new["settings"]},
        "counts": counts,
        "figures": figures,
        "errors": {**old.get("errors", {}), **new["errors"]},
        "raw": {**old.get("raw", {}), **new["raw"]},
        "merges": merges,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short run (a few minutes)")
    parser.add_argument("--only", default=",".join(MEASURES), help=f"comma-separated subset of {', '.join(MEASURES)}")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the JSON results")
    parser.add_argument("--no-setup", action="store_true", help="do not try to install wrk and hey")
    parser.add_argument(
        "--markdown", action="store_true", help="print the results file (--out) as a Markdown table; run nothing"
    )
    parser.add_argument("--brief", action="store_true", help="with --markdown: the README's selection of figures")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="replace only the measures run in --out (its other figures stay, the merge is recorded)",
    )
    parser.add_argument(
        "--versus-full",
        action="store_true",
        help="versus: each side's full default probe, not the six gunicorn profiles (about 40 minutes on 2 cores)",
    )
    parser.add_argument(
        "--keep-runs", type=Path, default=None, help="versus: keep each probe run's JSON in this folder"
    )
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown(json.loads(args.out.read_text()), brief=args.brief))
        return 0
    chosen = [m.strip() for m in args.only.split(",") if m.strip()]
    unknown = [m for m in chosen if m not in MEASURES]
    if unknown:
        parser.error(f"unknown measure {unknown[0]!r}: expected some of {', '.join(MEASURES)}")
    # A wide table when piped to a file or a log, as well as in a terminal.
    console = Console(width=None if sys.stdout.isatty() else 200)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    if not args.no_setup and {"clients", "embedding", "attribution"} & set(chosen):
        setup_tools(console)
    conf = settings(args.quick)
    facts = machine_facts()
    console.print(
        f"[bold]launch bench[/] {'--quick ' if args.quick else ''}{facts['date']}: {facts['cores']} cores, "
        f"{facts['cpu_model']}, Python {facts['python']}, load average {facts['load_average_at_start'][0]:.2f}"
    )
    results: dict[str, MeasureResult] = {}
    errors: dict[str, str] = {}
    started = time.monotonic()

    def say(text: str) -> None:
        console.print(text, highlight=False, markup=False)

    load_averages: dict[str, float] = {}

    def attempt(name: str, body: Callable[[], MeasureResult]) -> None:
        console.rule(name)
        load_averages[name] = os.getloadavg()[0]
        say(f"load average {load_averages[name]:.2f}")
        try:
            results[name] = body()
        except Exception as exc:  # one failed measure must not lose the others
            errors[name] = f"{type(exc).__name__}: {exc}"
            say(traceback.format_exc())

    try:
        needs_ping = [m for m in ("clients", "timing", "attribution", "capacity") if m in chosen]
        if needs_ping:
            # One server for the three measures on the same /ping: uvicorn, 1 worker, sync, no model.
            with launched("uvicorn-1-sync", model="none") as server:
                say(f"ping server: uvicorn-1-sync --model none at {server.url} (ready in {server.ready_seconds:.1f} s)")
                if "clients" in chosen:
                    attempt(
                        "clients", lambda: clients.run(server, duration=conf["load_s"], reps=conf["load_reps"], say=say)
                    )
                if "timing" in chosen:
                    attempt("timing", lambda: timing.run(server, quick=args.quick, say=say))
                if "attribution" in chosen:
                    attempt(
                        "attribution",
                        lambda: attribution.run(server, reps=conf["attr_reps"], duration=conf["attr_s"], say=say),
                    )
                if "capacity" in chosen:
                    attempt(
                        "capacity",
                        lambda: capacity.run(server, duration=conf["cap_s"], reps=conf["cap_reps"], say=say),
                    )
        if "embedding" in chosen:
            attempt(
                "embedding",
                lambda: embedding.run(
                    reps=conf["embed_reps"], rate_reps=conf["embed_rate_reps"], duration=conf["embed_s"], say=say
                ),
            )
        if "startup" in chosen:
            attempt("startup", lambda: startup.run(reps=conf["startup_reps"], say=say))
        if "matrix" in chosen:
            attempt("matrix", lambda: matrix.run(quick=args.quick, say=say))
        if "versus" in chosen:
            attempt(
                "versus",
                lambda: matrix.run_versus(
                    profiles=None if args.versus_full else matrix.VERSUS_PROFILES, keep=args.keep_runs, say=say
                ),
            )
        if "memory" in chosen:
            attempt("memory", lambda: memory.run(quick=args.quick, say=say))
        if "topology" in chosen:
            attempt("topology", lambda: topology.run(reps=conf["topo_reps"], duration=conf["topo_s"], say=say))
    except KeyboardInterrupt:
        errors["interrupted"] = "Ctrl-C: results so far are kept"
    figures: list[Figure] = []
    for name in MEASURES:
        if name in results:
            figures += results[name].figures
        elif name in errors:
            figures.append(
                Figure(measure=name, name="(measure failed)", value=None, unit="", status="ERROR", detail=errors[name])
            )
    notes = [n for r in results.values() for n in r.notes]
    title = (
        f"launch bench {'--quick ' if args.quick else ''}{facts['date']} — {facts['cores']} cores, {facts['cpu_model']}"
    )
    console.print(table(figures, title))
    for note in notes:
        console.print(f"[yellow]note:[/] {note}")
    counts = {s: sum(1 for f in figures if f.status == s) for s in ("PASS", "MISS", "SKIP", "ERROR")}
    console.print(", ".join(f"{n} {s}" for s, n in counts.items()) + f"; {time.monotonic() - started:.0f} s")
    facts["load_average_at_end"] = os.getloadavg()
    payload = {
        "schema": SCHEMA,
        "schema_version": 1,
        "quick": args.quick,
        "measures": chosen,
        "settings": conf,
        "machine": facts,
        "seconds": time.monotonic() - started,
        "counts": counts,
        "figures": [f.to_dict() for f in figures],
        "notes": notes,
        "errors": errors,
        "raw": {
            name: {"seconds": r.seconds, "load_average_at_start": load_averages.get(name), **r.raw}
            for name, r in results.items()
        },
    }
    if args.merge and args.out.exists():
        payload = merged(json.loads(args.out.read_text()), payload)
    write_results(args.out, payload)
    console.print(f"wrote {args.out}")
    return 130 if "interrupted" in errors else 0


if __name__ == "__main__":
    sys.exit(main())
