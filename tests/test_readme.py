"""The README's figures that can drift, checked against the code; no process is started.

Each test reads what the README states and asks the code (the built-in catalog, the CLI in-process through
Click's CliRunner, ``ExitCode``) for the same fact, so a change on either side that makes the README false
fails here with the line to fix.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import launcher.probe.memory
import launcher.probe.runner
from launcher.cli import main
from launcher.errors import ExitCode
from launcher.probe.limits import OPT_IN_BACKENDS
from launcher.probe.scenarios import EXTRA_SCENARIOS, ProbeOptions, ProfileTarget
from profiles import builtin_profiles

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
FIRST_SCREEN = 60
"""Lines a newcomer sees first: the path from clone to a first verdict must fit in them."""


def text(path: Path = README) -> str:
    return path.read_text(encoding="utf-8")


def section(heading: str) -> str:
    """The README's text under ``## heading`` (up to the next heading of level 2)."""
    found = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text(), re.MULTILINE | re.DOTALL)
    assert found, f"README.md has no '## {heading}' section"
    return found.group(1)


def line_of(needle: str, body: str | None = None) -> int:
    """1-based README line of the first occurrence of ``needle`` (for messages)."""
    source = text() if body is None else body
    return source[: source.index(needle)].count("\n") + 1


Launch = Callable[..., Result]


@pytest.fixture
def launch(runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Launch:
    """``launch(*args)``: ``launch ARGS`` in-process, in an empty folder (so that no ./launch.toml adds profiles)."""
    monkeypatch.chdir(tmp_path)

    def invoke(*args: str) -> Result:
        return runner.invoke(main, list(args), catch_exceptions=True)

    return invoke


class ProbeStarted(Exception):
    """Raised by the stand-in for the probe engine: the CLI got as far as starting profiles."""

    def __init__(self, targets: Sequence[ProfileTarget], options: ProbeOptions) -> None:
        super().__init__("probe started")
        self.targets = targets
        self.options = options


Plan = Callable[..., tuple[list[str], ProbeOptions]]


@pytest.fixture
def probe_plan(monkeypatch: pytest.MonkeyPatch, launch: Launch) -> Plan:
    """``plan(*args)``: what ``launch probe ARGS`` would start (profile names, options), nothing started."""

    def run_probe(targets: Sequence[ProfileTarget], options: ProbeOptions, **_: object) -> None:
        raise ProbeStarted(targets, options)

    monkeypatch.setattr(launcher.probe.runner, "run_probe", run_probe)
    monkeypatch.setattr(launcher.probe.memory, "check_fits", lambda profiles: None)

    def plan(*args: str) -> tuple[list[str], ProbeOptions]:
        result = launch("probe", *args)
        assert isinstance(result.exception, ProbeStarted), (result.exit_code, result.output, result.exception)
        return [t.profile.name for t in result.exception.targets], result.exception.options

    return plan


# --- (1) the profile count -------------------------------------------------------------------------------------


def test_the_stated_profile_count_is_the_catalogs(launch: Launch) -> None:
    result = launch("profiles", "--json")
    assert result.exit_code == 0, result.output
    listed = [p for p in json.loads(result.output) if p["source"] is None]
    count = len(listed)
    assert count == len(builtin_profiles())
    stated = re.findall(r"(\d+) built-in profiles", text())
    assert stated, "README.md states no 'N built-in profiles'"
    for figure in stated:
        assert int(figure) == count, (
            f"README.md line {line_of(f'{figure} built-in profiles')}: '{figure} built-in profiles', "
            f"but `launch profiles --json` lists {count}"
        )
    backends = re.search(r"(\d+) backends, (\d+) profiles", text())
    assert backends, "README.md's Profiles section states no 'N backends, M profiles'"
    assert (int(backends.group(1)), int(backends.group(2))) == (len({p["backend"] for p in listed}), count)
    table = re.findall(r"^\| `([a-z-]+)` \| .* \| .* \|$", section("Serving a profile"), re.MULTILINE)
    assert sorted(table) == sorted({p["backend"] for p in listed}), "README.md's backends table vs the catalog"


# --- (2) the default probe set ---------------------------------------------------------------------------------


DEFAULT_SET = re.compile(
    r"probes (\d+) of the (\d+) built-in profiles \(and your\s+own\): every backend but (.+?), whose", re.DOTALL
)


def test_the_stated_default_probe_set_is_what_launch_probe_selects(probe_plan: Plan) -> None:
    names, options = probe_plan()
    catalog = builtin_profiles()
    found = DEFAULT_SET.search(section("Probing"))
    assert found, "README.md's Probing section does not state the default set ('probes N of the M built-in ...')"
    count, total, left_out = int(found.group(1)), int(found.group(2)), re.findall(r"`([^`]+)`", found.group(3))
    assert count == len(names), (
        f"README.md says a default probe runs {count} profiles; `launch probe` selects {len(names)}"
    )
    assert total == len(catalog)
    single = {n: p for n, p in catalog.items() if p.topology == "single"}
    opt_in = sorted({p.backend for n, p in single.items() if n not in names})
    assert sorted(left_out) == opt_in == sorted(OPT_IN_BACKENDS), (left_out, opt_in)
    # The split topology's profiles are opt-in as a whole, and the paragraph says so.
    splits = [n for n, p in catalog.items() if p.topology == "split"]
    assert splits and not set(splits) & set(names)
    assert f"none of the {len(splits)} split profiles" in " ".join(section("Probing").split()).replace("three", "3")
    # The defaults the scenarios paragraph states: N per burst and repeats.
    probing = section("Probing")
    assert f"`-n`, default {options.requests};" in probing
    assert f"`--repeat R` times, default {options.repeat})" in probing


def test_the_scenario_table_is_the_default_scenarios_and_the_extra_ones(probe_plan: Plan) -> None:
    _, options = probe_plan()
    rows = dict(re.findall(r"^\| `([a-z]+)` \| (.*) \|$", section("Probing"), re.MULTILINE))
    assert set(rows) == set(options.scenarios) | set(EXTRA_SCENARIOS), sorted(rows)
    assert {name for name, what in rows.items() if "not in the default set" in what} == set(EXTRA_SCENARIOS)


# --- (3) the command list --------------------------------------------------------------------------------------


def help_commands(launch: Launch) -> set[str]:
    result = launch("--help")
    assert result.exit_code == 0, result.output
    listing = result.output.split("\nCommands:\n", 1)[1]
    return {line.split()[0] for line in listing.splitlines() if line.startswith("  ") and line.split()}


def test_the_command_table_is_launch_help(launch: Launch) -> None:
    cells = re.findall(r"^\| `launch ([^`]*)` \|", section("Commands"), re.MULTILINE)
    subcommands = {cell.split()[0] for cell in cells if not cell.startswith("-")}
    helped = help_commands(launch)
    assert subcommands - helped == set(), f"README.md lists commands `launch --help` does not: {subcommands - helped}"
    assert helped - subcommands == set(), (
        f"`launch --help` has commands README.md does not list: {helped - subcommands}"
    )
    # And the root command's own use, serving a profile.
    assert "--profile NAME" in cells
    assert "--profile NAME" in launch("--help").output


# --- (4) links -------------------------------------------------------------------------------------------------


LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def anchors(path: Path) -> set[str]:
    """GitHub's anchors for a Markdown file's headings."""
    slugs = set()
    in_code = False
    for line in text(path).splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            slugs.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return slugs


def markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


@pytest.mark.parametrize("page", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_to_an_existing_file_and_heading(page: Path) -> None:
    for target in LINK.findall(text(page)):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.is_file(), f"{page.relative_to(ROOT)}: link to {target}: no such file"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(linked), f"{page.relative_to(ROOT)}: link to {target}: no such heading"


def test_the_readme_links_every_docs_page() -> None:
    linked = {(README.parent / t.partition("#")[0]).resolve() for t in LINK.findall(text()) if t.startswith("docs/")}
    pages = {p.resolve() for p in DOCS.glob("*.md")}
    assert pages, "no docs/*.md"
    assert pages <= linked, f"docs pages no README link reaches: {sorted(p.name for p in pages - linked)}"


# --- (5) the first screen --------------------------------------------------------------------------------------


FIRST_STEPS: tuple[tuple[str, str], ...] = (
    ("clone", r"git clone \S.* && cd \S+"),
    ("install", r"bash scripts/test\b.*"),
    ("venv", r"\. \.venv/bin/activate"),
    ("list", r"launch profiles\b.*"),
    ("serve", r"launch --profile \S+.*"),
    ("probe", r"launch probe --profiles .*"),
    ("deploy", r"launch systemd --profile \S+.*"),
)
"""A newcomer's path in the README's first lines, in this order: one command line each."""


def first_screen_commands() -> dict[str, tuple[int, list[str]]]:
    """Step -> (line number, argv) of its first command line within the first screen."""
    lines = text().splitlines()[:FIRST_SCREEN]
    found: dict[str, tuple[int, list[str]]] = {}
    for step, pattern in FIRST_STEPS:
        for number, line in enumerate(lines, start=1):
            if re.fullmatch(pattern, line):
                argv = shlex.split(line, comments=True) if step != "clone" else line.split()
                found[step] = (number, argv)
                break
    return found


def test_the_first_screen_goes_from_clone_to_a_first_verdict_in_order() -> None:
    found = first_screen_commands()
    missing = [step for step, _ in FIRST_STEPS if step not in found]
    assert not missing, f"not in README.md's first {FIRST_SCREEN} lines: {missing}"
    order = [found[step][0] for step, _ in FIRST_STEPS]
    assert order == sorted(order) and len(set(order)) == len(order), dict(
        zip([s for s, _ in FIRST_STEPS], order, strict=True)
    )


def test_the_first_screen_commands_name_what_exists(launch: Launch, probe_plan: Plan) -> None:
    found = first_screen_commands()
    catalog = builtin_profiles()
    serve = found["serve"][1]
    assert serve[:2] == ["launch", "--profile"] and serve[2] in catalog, serve
    deploy = launch(*found["deploy"][1][1:])
    assert deploy.exit_code == 0 and "Type=notify" in deploy.stdout, deploy.output
    # The probe's command line parses, and the profiles it starts are the rows quoted under it.
    argv = found["probe"][1]
    names, options = probe_plan(*argv[2:])
    assert names and all(name in catalog for name in names)
    body = "\n".join(text().splitlines()[found["probe"][0] : FIRST_SCREEN])
    rows = re.findall(r"^ (\S+) +\d+\.\d+ ", body, re.MULTILINE)
    assert rows == names, f"README.md quotes rows {rows} for `{' '.join(argv)}`, which probes {names}"
    assert f"bursts of {options.requests} concurrent requests" in body


def test_the_stated_exit_codes_are_exit_code() -> None:
    stated = {int(code) for code in re.findall(r"^\| (\d+) \|", section("Exit codes"), re.MULTILINE)}
    assert stated == {int(code) for code in ExitCode}, sorted(stated ^ {int(code) for code in ExitCode})
