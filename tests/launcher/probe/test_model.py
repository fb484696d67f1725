"""The result objects and their versioned JSON form."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import pytest

from launcher.probe.model import (
    SCHEMA,
    SCHEMA_VERSION,
    Claim,
    LogEvent,
    ProbeRun,
    Recommendation,
    ResultFileError,
    dump_run,
    load_run,
    run_from_json,
    run_to_json,
)
from tests.launcher.probe.records import back_to_back, failed, health, passed, result, scenario, work


def _run() -> ProbeRun:
    sleep = scenario(
        "sleep",
        [*back_to_back(101, 2, 1.0), work("api", None, None, None, error="timeout", index=2), health(101, 0.5, 1.0)],
        verdicts=[passed("sleep"), failed("sleep")],
        log_events=[LogEvent(kind="worker_timeout", pid=4319, line="[CRITICAL] WORKER TIMEOUT (pid:4319)")],
    )
    generate = scenario("generate", [work("api", 102, 0, 2, pipeline=(0.5, 1.5), what="generate")])
    ok = result("uvicorn-3-async", [sleep, generate])
    down = result("gunicorn-1-sync", status="did_not_start", ready_seconds=None, error="port in use")
    return ProbeRun(
        created="2026-11-27T08:30:34+00:00",
        machine={"cores": 2, "python": "3.11.7"},
        options={"requests": 3, "seconds": 1.0, "scenarios": ["sleep", "generate"]},
        profiles=(ok, down),
        claims=(Claim(number=1, text="a claim", verdict="UNTESTED", evidence="none"),),
        recommendation=Recommendation(
            profile=ok.profile, source=None, ready_seconds=1.0, why="fastest", rejected={"gunicorn-1-sync": "down"}
        ),
        complete=False,
    )


def _data() -> dict[str, Any]:
    return json.loads(dump_run(_run()))


def _error(text: str) -> str:
    with pytest.raises(ResultFileError) as info:
        load_run(text)
    message = str(info.value)
    assert "\n" not in message, message
    assert message
    return message


class TestRoundTrip:
    def test_dump_then_load_is_equal(self) -> None:
        run = _run()
        assert load_run(dump_run(run)) == run

    def test_header(self) -> None:
        data = run_to_json(_run())
        assert data["schema"] == SCHEMA == "launch.probe"
        assert data["schema_version"] == SCHEMA_VERSION == 1
        assert list(data)[:2] == ["schema", "schema_version"]

    def test_derived_properties_survive(self) -> None:
        loaded = load_run(dump_run(_run()))
        first = loaded.profiles[0]
        assert first.name == "uvicorn-3-async"
        assert isinstance(first.scenarios, tuple)
        assert isinstance(first.scenarios[0].records, tuple)
        assert [r.ok for r in first.scenarios[0].records] == [True, True, False, True]
        assert first.scenarios[0].records[0].has_work_interval
        assert [v.passed for v in first.verdicts] == [True, False]
        assert not first.passed
        assert not loaded.passed
        assert loaded.complete is False
        assert loaded.recommendation is not None
        assert loaded.recommendation.rejected == {"gunicorn-1-sync": "down"}

    def test_minimal_run(self) -> None:
        run = ProbeRun(created="now", machine={}, options={}, profiles=())
        loaded = load_run(dump_run(run))
        assert loaded == run
        assert loaded.recommendation is None
        assert loaded.passed

    def test_unknown_fields_are_ignored(self) -> None:
        data = _data()
        data["extra"] = 1
        data["profiles"][0]["extra"] = 2
        data["profiles"][0]["scenarios"][0]["records"][0]["extra"] = 3
        assert run_from_json(data) == _run()

    def test_older_optional_fields_default(self) -> None:
        data = _data()
        del data["complete"]
        del data["claims"]
        del data["profiles"][0]["scenarios"][0]["log_events"]
        loaded = run_from_json(data)
        assert loaded.complete is True
        assert loaded.claims == ()
        assert loaded.profiles[0].scenarios[0].log_events == ()


class TestBadFiles:
    @pytest.mark.parametrize("cut", [1, 10, 100, -2])
    def test_truncated(self, cut: int) -> None:
        text = dump_run(_run())[:cut]
        message = _error(text)
        assert message.startswith("not valid JSON")
        found = re.search(r"byte (\d+)", message)
        assert found is not None, message
        assert 0 < int(found.group(1)) <= len(text.encode())

    def test_truncated_at_a_value_boundary_says_so(self) -> None:
        text = dump_run(_run())
        cut = text[: text.index('"machine"')]
        assert _error(cut) == (
            f"not valid JSON: it ends at byte {len(cut.encode())}, mid-document (truncated? an interrupted copy?)"
        )

    def test_empty(self) -> None:
        assert _error("") == "not valid JSON: the file is empty"
        assert _error(" \n") == "not valid JSON: the file is empty"

    def test_corrupt_names_the_byte_not_the_character(self) -> None:
        run = dataclasses.replace(_run(), machine={"cpu": "Ryzén ½"})
        text = json.dumps(run_to_json(run), indent=1, ensure_ascii=False)
        at = text.index('"options"')
        corrupt = text[:at] + "#" + text[at + 1 :]
        message = _error(corrupt)
        assert f"at byte {len(text[:at].encode())} " in message, message
        assert len(text[:at].encode()) != at  # the non-ASCII text before it makes bytes and characters differ

    @pytest.mark.parametrize(
        "text", ["[]", "1", '"launch.probe"', "null", "{}", '{"schema": "other"}', '{"name": "uvicorn-1-sync"}']
    )
    def test_foreign(self, text: str) -> None:
        assert _error(text).startswith("not a launch probe result")

    def test_newer_schema_version(self) -> None:
        data = _data()
        data["schema_version"] = SCHEMA_VERSION + 1
        message = _error(json.dumps(data))
        assert message == (
            f"schema_version {SCHEMA_VERSION + 1} is newer than this launch understands ({SCHEMA_VERSION}); "
            "upgrade launch"
        )

    @pytest.mark.parametrize("version", [None, "1", 1.0])
    def test_bad_schema_version(self, version: object) -> None:
        data = _data()
        data["schema_version"] = version
        assert _error(json.dumps(data)) == "schema_version is missing or not an integer"

    def test_missing_schema_version(self) -> None:
        data = _data()
        del data["schema_version"]
        assert _error(json.dumps(data)) == "schema_version is missing or not an integer"

    @pytest.mark.parametrize("key", ["profiles", "created", "machine", "options"])
    def test_missing_top_level_field(self, key: str) -> None:
        data = _data()
        del data[key]
        assert _error(json.dumps(data)) == f"malformed launch probe result: {key}: missing"

    def test_missing_record_field(self) -> None:
        data = _data()
        del data["profiles"][0]["scenarios"][0]["records"][1]["sent_ns"]
        message = _error(json.dumps(data))
        assert message == "malformed launch probe result: profiles[0].scenarios[0].records[1].sent_ns: missing"

    def test_missing_scenario_field(self) -> None:
        data = _data()
        del data["profiles"][0]["scenarios"][1]["seconds"]
        message = _error(json.dumps(data))
        assert message == "malformed launch probe result: profiles[0].scenarios[1].seconds: missing"

    def test_missing_profile_field(self) -> None:
        data = _data()
        del data["profiles"][1]["status"]
        message = _error(json.dumps(data))
        assert message == "malformed launch probe result: profiles[1].status: missing"

    def test_missing_profile_name_is_not_needed_to_load(self) -> None:
        # profile is a free-form dict; its contents are the renderer's business.
        data = _data()
        data["profiles"][0]["profile"] = {"name": "x"}
        assert run_from_json(data).profiles[0].name == "x"

    def test_missing_claim_and_recommendation_fields(self) -> None:
        data = _data()
        del data["claims"][0]["verdict"]
        assert _error(json.dumps(data)) == "malformed launch probe result: claims[0].verdict: missing"
        data = _data()
        del data["recommendation"]["why"]
        assert _error(json.dumps(data)) == "malformed launch probe result: recommendation.why: missing"

    @pytest.mark.parametrize(
        ("path", "value"),
        [
            (("profiles",), 5),
            (("profiles",), "abc"),
            (("profiles", 0), "uvicorn-1-sync"),
            (("profiles", 0, "scenarios"), 3),
            (("profiles", 0, "scenarios", 0), []),
            (("profiles", 0, "scenarios", 0, "records"), [1, 2]),
            (("profiles", 0, "scenarios", 0, "records"), {"a": 1}),
            (("profiles", 0, "scenarios", 0, "log_events", 0), None),
            (("profiles", 0, "scenarios", 0, "verdicts"), 7),
            (("claims",), [["x"]]),
            (("recommendation",), "uvicorn-1-sync"),
            (("machine",), "two cores"),
            (("machine",), [1, 2]),
            (("machine",), ["ab"]),
            (("options",), 3),
        ],
    )
    def test_wrong_types(self, path: tuple[str | int, ...], value: object) -> None:
        data = _data()
        target: Any = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        _error(json.dumps(data))

    def test_machine_not_an_object(self) -> None:
        data = _data()
        data["machine"] = "two cores"
        assert _error(json.dumps(data)) == "malformed launch probe result: machine: expected an object, got text"

    @pytest.mark.parametrize(("value", "got"), [(True, "true or false"), ("7", "text"), (1.5, "a number")])
    def test_strict_integers(self, value: object, got: str) -> None:
        data = _data()
        data["profiles"][0]["scenarios"][0]["records"][0]["pid"] = value
        assert _error(json.dumps(data)) == (
            f"malformed launch probe result: profiles[0].scenarios[0].records[0].pid: expected an integer, got {got}"
        )

    def test_several_errors_are_counted(self) -> None:
        data = _data()
        del data["created"]
        del data["profiles"][0]["status"]
        assert _error(json.dumps(data)) == "malformed launch probe result: created: missing (and 1 more)"
