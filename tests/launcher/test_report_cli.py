"""`launch report` on saved results, and the `probe` command's progress and --html wiring (no servers started)."""

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import launcher.probe.runner
from launcher.cli import main
from launcher.errors import ExitCode
from launcher.probe.model import SCHEMA_VERSION, ProbeRun, ProfileResult, dump_run, load_run, read_run
from launcher.probe.runner import ProgressEvent
from launcher.probe.scenarios import ProbeOptions, ProfileTarget
from tests.launcher.probe.sample_run import RUN_V1, sample_run

pytestmark = pytest.mark.usefixtures("clean_cwd")  # never pick up a stray ./launch.toml

WIDE = {"COLUMNS": "200"}


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    path = tmp_path / "run.json"
    path.write_text(dump_run(sample_run()) + "\n")
    return path


def invoke(runner: CliRunner, *args: str) -> Result:
    return runner.invoke(main, list(args), env=WIDE)


def assert_one_line_error(result: Result, *needles: str, code: int = ExitCode.USAGE) -> str:
    """Exit ``code``, exactly one ``launch: error:`` line on stderr, nothing else, no traceback."""
    assert result.exit_code == code, (result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("launch: error: "), lines[0]
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


class TestReport:
    def test_renders_the_tables(self, runner: CliRunner, saved: Path) -> None:
        result = invoke(runner, "report", str(saved))
        assert result.exit_code == 0, result.output
        assert result.stderr == ""
        out = result.stdout
        for text in ("uvicorn-1-sync", "gunicorn-3-sync", "hypercorn-1-sync", "summary", "the write-up's claims"):
            assert text in out, text
        assert "Recommended: uvicorn-1-sync" in out
        assert "INCOMPLETE" not in out

    def test_incomplete_run_says_so(self, runner: CliRunner, tmp_path: Path) -> None:
        path = tmp_path / "partial.json"
        path.write_text(dump_run(sample_run(complete=False)))
        result = invoke(runner, "report", str(path))
        assert result.exit_code == 0
        assert "INCOMPLETE" in result.stdout

    def test_writes_html(self, runner: CliRunner, saved: Path, tmp_path: Path) -> None:
        out = tmp_path / "report.html"
        result = invoke(runner, "report", str(saved), "--html", str(out))
        assert result.exit_code == 0, result.output
        assert result.stdout == ""
        page = out.read_text(encoding="utf-8")
        assert page.startswith("<!DOCTYPE html>")
        ET.fromstring(page)
        assert "uvicorn-1-sync" in page and "<svg" in page

    def test_html_into_a_missing_folder(self, runner: CliRunner, saved: Path, tmp_path: Path) -> None:
        result = invoke(runner, "report", str(saved), "--html", str(tmp_path / "nope" / "r.html"))
        assert_one_line_error(result, "--html", "does not exist")

    @pytest.mark.parametrize("cut", [0, 1, 100, -3])
    def test_truncated_file(self, runner: CliRunner, saved: Path, cut: int) -> None:
        saved.write_text(saved.read_text()[:cut])
        line = assert_one_line_error(invoke(runner, "report", str(saved)), str(saved), "not valid JSON")
        assert cut == 0 or "byte" in line

    @pytest.mark.parametrize("text", ["{}", "[1, 2]", '{"schema": "something.else", "schema_version": 1}', "null"])
    def test_foreign_file(self, runner: CliRunner, saved: Path, text: str) -> None:
        saved.write_text(text)
        assert_one_line_error(invoke(runner, "report", str(saved)), "not a launch result")

    def test_binary_file(self, runner: CliRunner, saved: Path) -> None:
        saved.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00")
        assert_one_line_error(invoke(runner, "report", str(saved)), str(saved))

    def test_newer_schema(self, runner: CliRunner, saved: Path) -> None:
        data = json.loads(saved.read_text())
        data["schema_version"] = SCHEMA_VERSION + 1
        saved.write_text(json.dumps(data))
        assert_one_line_error(invoke(runner, "report", str(saved)), "is newer than this launch understands")

    def test_wrong_types_inside(self, runner: CliRunner, saved: Path) -> None:
        data = json.loads(saved.read_text())
        data["profiles"][0]["scenarios"][0]["records"][0]["start_ns"] = "soon"
        saved.write_text(json.dumps(data))
        line = assert_one_line_error(invoke(runner, "report", str(saved)), "profiles[0].scenarios[0].records")
        assert "start_ns" in line

    def test_missing_file(self, runner: CliRunner, tmp_path: Path) -> None:
        missing = tmp_path / "missing.json"
        assert_one_line_error(invoke(runner, "report", str(missing)), str(missing), "No such file")

    def test_a_folder(self, runner: CliRunner, tmp_path: Path) -> None:
        assert_one_line_error(invoke(runner, "report", str(tmp_path)), "cannot read")

    def test_filters_profiles_by_name_and_glob(self, runner: CliRunner, saved: Path, tmp_path: Path) -> None:
        result = invoke(runner, "report", str(saved), "--profiles", "uvicorn-*,hypercorn-1-sync")
        assert result.exit_code == 0, result.output
        assert "uvicorn-1-sync" in result.stdout and "hypercorn-1-sync" in result.stdout
        assert "gunicorn-3-sync" not in result.stdout
        out = tmp_path / "one.html"
        result = invoke(runner, "report", str(saved), "--profiles", "gunicorn-3-sync", "--html", str(out))
        assert result.exit_code == 0, result.output
        page = out.read_text()
        assert "gunicorn-3-sync" in page
        assert "uvicorn-1-sync" not in page and "hypercorn-1-sync" not in page

    def test_filtered_recommendation_is_judged_over_what_is_shown(self, runner: CliRunner, saved: Path) -> None:
        result = invoke(runner, "report", str(saved), "--profiles", "gunicorn-3-sync")
        assert result.exit_code == 0, result.output
        assert "uvicorn-1-sync" not in result.stdout

    @pytest.mark.parametrize("spec", ["nope", "uvicorn-1-sync,nope", "docker-*"])
    def test_unknown_profile(self, runner: CliRunner, saved: Path, spec: str) -> None:
        line = assert_one_line_error(invoke(runner, "report", str(saved), "--profiles", spec), "--profiles")
        assert "uvicorn-1-sync, gunicorn-3-sync, hypercorn-1-sync" in line

    @pytest.mark.parametrize("args", [(), ("--profiles", "uvicorn-1-sync")])
    def test_a_profile_that_lacks_a_field_is_refused(
        self, runner: CliRunner, saved: Path, args: tuple[str, ...]
    ) -> None:
        # Read as a profile, checked like a profiles file's: never shown or judged on half a set-up.
        data = json.loads(saved.read_text())
        del data["profiles"][0]["profile"]["backend"]
        saved.write_text(json.dumps(data))
        result = invoke(runner, "report", str(saved), *args)
        assert_one_line_error(result, str(saved), "malformed launch probe result: profiles[0].profile", "'backend'")

    def test_a_version_1_file_renders_as_the_current_one(self, runner: CliRunner, tmp_path: Path) -> None:
        current = tmp_path / "run.json"
        # The same run written by this launch: a result keeps the assessment it recorded (a v1 file's liveness
        # evidence predates the per-scenario classes), so the migrated run is what the current file holds.
        current.write_text(dump_run(read_run(RUN_V1)))
        for args in ((), ("--profiles", "uvicorn-*,gunicorn-*"), ("--json",)):
            old = invoke(runner, "report", str(RUN_V1), *args)
            new = invoke(runner, "report", str(current), *args)
            assert old.exit_code == new.exit_code == 0, old.output
            assert old.stdout == new.stdout, args
        assert (
            "liveness" in old.stdout and "Recommended: uvicorn-1-sync" in invoke(runner, "report", str(RUN_V1)).stdout
        )
        page_v1, page = tmp_path / "v1.html", tmp_path / "current.html"
        assert invoke(runner, "report", str(RUN_V1), "--html", str(page_v1)).exit_code == 0
        assert invoke(runner, "report", str(current), "--html", str(page)).exit_code == 0
        assert page_v1.read_text() == page.read_text()

    @pytest.mark.parametrize("version", [0, SCHEMA_VERSION + 1])
    def test_an_unknown_version_is_refused(self, runner: CliRunner, saved: Path, version: int) -> None:
        data = json.loads(saved.read_text())
        data["schema_version"] = version
        saved.write_text(json.dumps(data))
        line = assert_one_line_error(invoke(runner, "report", str(saved)), str(saved), f"schema_version {version}")
        assert ("newer" in line) == (version > SCHEMA_VERSION)

    def test_json_prints_the_run(self, runner: CliRunner, saved: Path) -> None:
        result = invoke(runner, "report", str(saved), "--json")
        assert result.exit_code == 0, result.output
        assert result.stderr == ""
        assert load_run(result.stdout) == sample_run()
        assert json.loads(result.stdout)["schema_version"] == SCHEMA_VERSION

    def test_json_of_some_profiles(self, runner: CliRunner, saved: Path) -> None:
        result = invoke(runner, "report", str(saved), "--json", "--profiles", "uvicorn-*")
        assert result.exit_code == 0, result.output
        names = [p["profile"]["name"] for p in json.loads(result.stdout)["profiles"]]
        assert names and all(name.startswith("uvicorn-") for name in names)

    def test_round_trip_of_a_probe_result(self, runner: CliRunner, saved: Path) -> None:
        assert load_run(saved.read_text()) == sample_run()


def fake_probe(
    monkeypatch: pytest.MonkeyPatch,
    *,
    complete: bool = True,
    interrupt: bool = False,
) -> list[ProgressEvent]:
    """Replace run_probe: report a few events, then return the sample run (or raise KeyboardInterrupt)."""
    sent: list[ProgressEvent] = []

    def run_probe(
        targets: Sequence[ProfileTarget],
        options: ProbeOptions,
        *,
        progress: Callable[[ProgressEvent], None] | None = None,
        on_profile: Callable[[ProbeRun], None] | None = None,
        done: Sequence[ProfileResult] = (),
    ) -> ProbeRun:
        assert progress is not None and on_profile is not None and not done
        total = len(targets)
        for index, target in enumerate(targets, start=1):
            name = target.profile.name
            for event in (
                ProgressEvent(index=index, total=total, profile=name, phase="starting"),
                ProgressEvent(
                    index=index, total=total, profile=name, phase="sleep", detail="3 requests", expected_seconds=1.0
                ),
                ProgressEvent(index=index, total=total, profile=name, phase="stopping"),
                ProgressEvent(index=index, total=total, profile=name, phase="done", detail="passed"),
            ):
                sent.append(event)
                progress(event)
            on_profile(sample_run(complete=False))
        if interrupt:
            raise KeyboardInterrupt
        return sample_run(complete=complete)

    monkeypatch.setattr(launcher.probe.runner, "run_probe", run_probe)
    return sent


class TestProbeOutput:
    def test_progress_lines_on_stderr_when_not_a_terminal(
        self, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        sent = fake_probe(monkeypatch)
        result = invoke(runner, "probe", "--profiles", "uvicorn-1-sync,uvicorn-1-async")
        assert result.exit_code == ExitCode.EXPECTATION_FAILED, result.output
        lines = result.stderr.splitlines()
        assert len(lines) == len(sent) == 8
        assert "[1/2] uvicorn-1-sync: starting the server" in lines[0]
        assert "[1/2] uvicorn-1-sync: sleep (3 requests, at least 1s each)" in lines[1]
        assert "[2/2] uvicorn-1-async: done: passed" in lines[-1]
        assert "\x1b[" not in result.stderr, "no terminal codes in a log"
        assert "Recommended:" in result.stdout

    def test_quiet_prints_no_progress(self, runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
        fake_probe(monkeypatch)
        result = invoke(runner, "probe", "--profiles", "uvicorn-1-sync", "--quiet")
        assert result.stderr == ""
        assert "Recommended:" in result.stdout

    def test_html_and_json_at_the_end(self, runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        fake_probe(monkeypatch)
        page, data = tmp_path / "r.html", tmp_path / "r.json"
        result = invoke(runner, "probe", "--profiles", "uvicorn-1-sync", "-q", "--html", str(page), "--json", str(data))
        assert result.exit_code == ExitCode.EXPECTATION_FAILED, result.output
        text = page.read_text()
        ET.fromstring(text)
        assert "INCOMPLETE" not in text and "<svg" in text
        saved = load_run(data.read_text())
        assert dataclasses.replace(saved, options=sample_run().options) == sample_run()
        assert saved.options["profiles"] == ["uvicorn-1-sync"], "the plan, for --resume"

    def test_html_of_an_interrupted_run(
        self, runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        fake_probe(monkeypatch, complete=False)
        page = tmp_path / "r.html"
        result = invoke(runner, "probe", "--profiles", "uvicorn-1-sync", "-q", "--html", str(page))
        line = assert_one_line_error(result, "interrupted; partial results written to", code=ExitCode.INTERRUPTED)
        assert str(page) in line
        assert "INCOMPLETE" in page.read_text()

    def test_ctrl_c_outside_a_profile(self, runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        fake_probe(monkeypatch, interrupt=True)
        result = invoke(runner, "probe", "--profiles", "uvicorn-1-sync", "-q", "--html", str(tmp_path / "r.html"))
        assert_one_line_error(result, "interrupted", code=ExitCode.INTERRUPTED)

    def test_html_into_a_missing_folder(
        self, runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        sent = fake_probe(monkeypatch)
        result = invoke(runner, "probe", "--profiles", "uvicorn-1-sync", "--html", str(tmp_path / "no" / "r.html"))
        assert_one_line_error(result, "--html", "does not exist")
        assert sent == [], "checked before anything runs"


SHOP = Path(__file__).parent / "compare" / "data" / "shop-base.json"
"""A saved ``launch probe --app examples.shop:app`` result (schema ``launch.appprobe`` version 1)."""


class TestReportOtherKinds:
    """`launch report` reads every result `launch` writes: an app's probe and a capacity sweep too."""

    def test_an_apps_probe_is_shown_again(self, runner: CliRunner) -> None:
        result = invoke(runner, "report", str(SHOP))
        assert result.exit_code == 0, result.output
        assert "shop:app: per-route verdicts" in result.output
        assert "lookup-threaded" in result.output and "runs concurrently" in result.output
        assert "recommendation: uvicorn-1-sync" in result.output

    def test_an_apps_probe_as_json_is_the_current_schema_and_reads_back(self, runner: CliRunner) -> None:
        from launcher.probe.appprobe import SCHEMA_VERSION as APP_VERSION
        from launcher.probe.appprobe import run_from_json

        result = invoke(runner, "report", str(SHOP), "--json")
        assert result.exit_code == 0, result.output
        data = json.loads(result.output)
        assert (data["schema"], data["schema_version"]) == ("launch.appprobe", APP_VERSION)
        assert run_from_json(data).recommendation.profile == "uvicorn-1-sync"

    def test_an_apps_probe_as_html(self, runner: CliRunner, tmp_path: Path) -> None:
        page = tmp_path / "shop.html"
        result = invoke(runner, "report", str(SHOP), "--html", str(page))
        assert result.exit_code == 0, result.output
        text = page.read_text()
        assert text.startswith("<!DOCTYPE html>") and "launch probe --app shop:app" in text
        assert "Recommended: uvicorn-1-sync" in text and "lookup-async" in text

    def test_profiles_narrow_an_apps_probe_and_a_name_it_lacks_is_one_line(self, runner: CliRunner) -> None:
        assert invoke(runner, "report", str(SHOP), "--profiles", "uvicorn-*").exit_code == 0
        assert_one_line_error(invoke(runner, "report", str(SHOP), "--profiles", "gunicorn-3-sync"), "gunicorn-3-sync")

    def test_a_capacity_sweep_is_shown_whole(self, runner: CliRunner, tmp_path: Path) -> None:
        from launcher.capacity.model import dump_run as dump_capacity
        from tests.launcher.compare.test_compare import _capacity

        saved = tmp_path / "cap.json"
        saved.write_text(dump_capacity(_capacity(10.0)))
        result = invoke(runner, "report", str(saved))
        assert result.exit_code == 0, result.output
        assert "uvicorn-1-offload" in result.output
        page = tmp_path / "cap.html"
        assert invoke(runner, "report", str(saved), "--html", str(page)).exit_code == 0
        assert page.read_text().startswith("<!DOCTYPE html>")
        assert_one_line_error(invoke(runner, "report", str(saved), "--profiles", "uvicorn-*"), "shown whole")
