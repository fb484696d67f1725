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
    Assessment,
    CheckOutcome,
    Claim,
    ClaimVerdict,
    Conformance,
    ConformanceCheck,
    Kind,
    Liveness,
    LogEvent,
    ProbeRun,
    ProfileResult,
    Recommendation,
    ResultFileError,
    Status,
    dump_run,
    load_run,
    read_run,
    run_from_json,
    run_to_json,
)
from profiles import Profile, builtin_profiles
from profiles.model import DEFAULT_MAX_ONGOING_REQUESTS
from tests.launcher.probe.records import back_to_back, failed, health, passed, result, scenario, work
from tests.launcher.probe.sample_run import RUN_V1, assessed_sample_run


def _run() -> ProbeRun:
    sleep = scenario(
        "sleep",
        [*back_to_back(101, 2, 1.0), work("api", None, None, None, error="timeout", index=2), health(101, 0.5, 1.0)],
        verdicts=[passed("sleep"), failed("sleep")],
        log_events=[LogEvent(kind="worker_timeout", pid=4319, line="[CRITICAL] WORKER TIMEOUT (pid:4319)")],
    )
    generate = scenario("generate", [work("api", 102, 0, 2, pipeline=(0.5, 1.5), what="generate")])
    ok = dataclasses.replace(
        result("uvicorn-3-async", [sleep, generate]),
        assessment=Assessment(predicted=False, fit=False, unfit=("liveness blocked",), liveness=Liveness.BLOCKED),
    )
    down = result("gunicorn-1-sync", status="did_not_start", ready_seconds=None, error="port in use")
    return ProbeRun(
        created="2026-11-27T08:30:34+00:00",
        machine={"cores": 2, "python": "3.11.7"},
        options={"requests": 3, "seconds": 1.0, "scenarios": ["sleep", "generate"]},
        profiles=(ok, down),
        claims=(Claim(number=1, text="a claim", verdict=ClaimVerdict.UNTESTED, evidence="none"),),
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
        assert data["schema_version"] == SCHEMA_VERSION == 4
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

    def test_typed_fields_come_back_typed(self) -> None:
        loaded = load_run(dump_run(_run()))
        first = loaded.profiles[0]
        assert isinstance(first.profile, Profile) and first.profile == builtin_profiles()["uvicorn-3-async"]
        assert first.status is Status.OK and loaded.profiles[1].status is Status.DID_NOT_START
        assert [r.kind for r in first.scenarios[0].records] == [Kind.API, Kind.API, Kind.API, Kind.HEALTH]
        assert all(type(r.kind) is Kind for r in first.scenarios[0].records)
        assert first.assessment is not None and first.assessment.liveness is Liveness.BLOCKED
        assert loaded.claims[0].verdict is ClaimVerdict.UNTESTED
        assert loaded.recommendation is not None and isinstance(loaded.recommendation.profile, Profile)

    def test_enums_are_written_as_their_values(self) -> None:
        data = _data()
        assert data["profiles"][0]["status"] == "ok"
        assert data["profiles"][0]["scenarios"][0]["records"][0]["kind"] == "api"
        assert data["profiles"][0]["assessment"]["liveness"] == "blocked"
        assert data["claims"][0]["verdict"] == "UNTESTED"
        assert data["profiles"][0]["profile"] == builtin_profiles()["uvicorn-3-async"].to_dict()

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

    def test_a_profile_needs_every_field(self) -> None:
        # A result records the set-up that ran, not today's defaults.
        data = _data()
        data["profiles"][0]["profile"] = {"name": "x"}
        assert _error(json.dumps(data)) == "malformed launch probe result: profiles[0].profile: missing field 'backend'"
        data = _data()
        del data["recommendation"]["profile"]["timeout"]
        assert (
            _error(json.dumps(data)) == "malformed launch probe result: recommendation.profile: missing field 'timeout'"
        )

    def test_a_profile_field_no_profile_has_is_refused(self) -> None:
        data = _data()
        data["profiles"][1]["profile"]["demo"] = True
        assert _error(json.dumps(data)) == "malformed launch probe result: profiles[1].profile: unknown field 'demo'"

    @pytest.mark.parametrize(
        ("key", "value", "problem"),
        [
            ("workers", 0, "workers = 0: expected 1 to 64"),
            ("backend", "daphne", "backend = 'daphne': expected one of"),
            ("mode", "fast", "mode = 'fast': expected one of sync, async, offload"),
            ("name", "a b", "name = 'a b': use letters"),
        ],
    )
    def test_a_profile_is_checked_like_a_profiles_file(self, key: str, value: object, problem: str) -> None:
        data = _data()
        data["profiles"][0]["profile"][key] = value
        message = _error(json.dumps(data))
        assert message.startswith(f"malformed launch probe result: profiles[0].profile: {problem}"), message

    @pytest.mark.parametrize(
        ("path", "value"),
        [
            (("profiles", 0, "status"), "fine"),
            (("profiles", 0, "scenarios", 0, "records", 0, "kind"), "websocket"),
            (("profiles", 0, "assessment", "liveness"), "sluggish"),
            (("claims", 0, "verdict"), "confirmed"),
        ],
    )
    def test_closed_sets(self, path: tuple[str | int, ...], value: str) -> None:
        data = _data()
        target: Any = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        where = "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in path).lstrip(".")
        assert _error(json.dumps(data)).startswith(f"malformed launch probe result: {where}: Input should be ")

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


class TestConformanceInTheResult:
    """The server conformance check is recorded once per backend, typed, and read back as it was written."""

    def _run(self) -> ProbeRun:
        broken = Conformance(
            backend="gunicorn-asgi",
            server="gunicorn",
            version="27.0.1",
            seconds=8.8,
            outcomes=(
                CheckOutcome(
                    check=ConformanceCheck.NO_FALSE_DISCONNECT,
                    passed=False,
                    observed="4 of 4 live requests reported a disconnect",
                    mechanism="a receive() cancelled inside is_disconnected() marks the live connection closed",
                ),
                CheckOutcome(check=ConformanceCheck.DISCONNECT_SEEN, passed=True, observed="seen"),
            ),
        )
        skipped = Conformance(backend="ray", server="ray", version=None, error="not checked: Ray backend")
        return dataclasses.replace(assessed_sample_run(), conformance=(broken, skipped))

    def test_round_trip(self) -> None:
        run = self._run()
        assert load_run(dump_run(run)) == run
        assert run.conformance_of("ray") == run.conformance[1] and run.conformance_of("uvicorn") is None

    def test_the_defect_names_the_mechanism_and_the_version(self) -> None:
        broken, skipped = self._run().conformance
        assert broken.server_defect == (
            "server defect: a receive() cancelled inside is_disconnected() marks the live connection closed"
            " (gunicorn 27.0.1)"
        )
        assert skipped.server_defect is None

    def test_a_check_name_outside_the_enum_is_refused(self) -> None:
        data = json.loads(dump_run(self._run()))
        data["conformance"][0]["outcomes"][0]["check"] = "no_disconnect"
        assert _error(json.dumps(data)).startswith("malformed launch probe result: conformance[0].outcomes[0].check")


def _recorded(run: ProbeRun) -> ProbeRun:
    """``run`` with each assessment reduced to what every version records alike.

    A result keeps the assessment it was judged with: a v1 file's liveness evidence predates the per-scenario
    classes (``liveness_scenario``, the scenario named in the evidence), its verdicts and class do not.
    """

    def reduced(result: ProfileResult) -> ProfileResult:
        a = result.assessment
        if a is None:
            return result
        return dataclasses.replace(
            result, assessment=dataclasses.replace(a, liveness_evidence="", liveness_scenario="")
        )

    return dataclasses.replace(run, profiles=tuple(reduced(p) for p in run.profiles))


class TestOlderVersions:
    """Version 1 files (profile objects free-form) and version 2 files (no conformance check) still load; any
    other version is refused in one line."""

    def test_a_v2_file_loads_with_no_conformance_check(self) -> None:
        data = json.loads(dump_run(assessed_sample_run()))
        del data["conformance"]
        data["schema_version"] = 2
        for p in data["profiles"]:
            del p["profile"]["disconnect_relay"]  # added with version 3: the value every earlier run had
        del data["recommendation"]["profile"]["disconnect_relay"]
        loaded = run_from_json(data)
        assert loaded == assessed_sample_run() and loaded.conformance == ()

    def _v1(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(RUN_V1.read_text(encoding="utf-8"))
        assert data["schema_version"] == 1
        return data

    def test_the_v1_file_loads_as_the_run_it_recorded(self) -> None:
        assert _recorded(read_run(RUN_V1)) == _recorded(assessed_sample_run())

    def test_a_migrated_run_is_written_as_the_current_version(self) -> None:
        loaded = read_run(RUN_V1)
        again = json.loads(dump_run(loaded))
        assert again["schema_version"] == SCHEMA_VERSION
        assert load_run(dump_run(loaded)) == loaded

    def test_v1_profiles_from_before_max_ongoing_requests_get_its_default(self) -> None:
        data = self._v1()
        for p in data["profiles"]:
            del p["profile"]["max_ongoing_requests"]
        del data["recommendation"]["profile"]["max_ongoing_requests"]
        loaded = run_from_json(data)
        assert [p.profile.max_ongoing_requests for p in loaded.profiles] == [DEFAULT_MAX_ONGOING_REQUESTS] * 3
        assert _recorded(loaded) == _recorded(assessed_sample_run())

    def test_a_v1_profile_is_still_checked(self) -> None:
        data = self._v1()
        data["profiles"][2]["profile"]["wrkers"] = 3
        assert _error(json.dumps(data)) == "malformed launch probe result: profiles[2].profile: unknown field 'wrkers'"
        data = self._v1()
        del data["recommendation"]["profile"]["backend"]
        assert (
            _error(json.dumps(data)) == "malformed launch probe result: recommendation.profile: missing field 'backend'"
        )

    @pytest.mark.parametrize("version", [0, -1])
    def test_an_unknown_older_version_is_refused(self, version: int) -> None:
        data = self._v1()
        data["schema_version"] = version
        assert _error(json.dumps(data)) == f"schema_version {version} is not one this launch reads (1, 2, 3, 4)"
