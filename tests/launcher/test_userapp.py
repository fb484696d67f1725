"""The user's app: import strings, the scenario file, per-route classes (no process started)."""

from __future__ import annotations

from pathlib import Path

import pytest

from launcher.probe.routes import (
    BLOCKS,
    CONCURRENT,
    CPU_THREADS,
    FAILS,
    SERIALIZED,
    BurstFacts,
    Call,
    classify_burst,
    route_class,
)
from launcher.probe.scenario_file import ScenarioFileError, load_scenario_file
from launcher.userapp import AppLoadError, AppSpec, is_asgi_app, load

MS = 1_000_000


def calls(*intervals: tuple[int, int], pid: int = 7, ok: bool = True) -> tuple[Call, ...]:
    return tuple(Call(start_ns=a * MS, end_ns=b * MS, pid=pid, ok=ok, status=200 if ok else 500) for a, b in intervals)


def test_side_by_side_is_concurrent() -> None:
    facts = BurstFacts(calls=calls((0, 300), (0, 302), (1, 305)), stall_ms={7: 3.0}, cpu_s={7: 0.01})
    assert classify_burst(facts).route_class == CONCURRENT


def test_a_long_stall_is_a_blocked_loop_with_its_length() -> None:
    facts = BurstFacts(calls=calls((0, 300), (300, 600), (600, 900)), stall_ms={7: 900.0}, cpu_s={7: 0.0})
    verdict = classify_burst(facts)
    assert verdict.route_class == BLOCKS
    assert verdict.longest_stall_ms == 900.0


def test_one_after_another_with_a_free_loop_is_serialized() -> None:
    facts = BurstFacts(calls=calls((0, 300), (0, 600), (0, 900), (0, 1200)), stall_ms={7: 4.0}, cpu_s={7: 0.0})
    assert classify_burst(facts).route_class == SERIALIZED


def test_overlapping_and_burning_cpu_is_gil_contention() -> None:
    facts = BurstFacts(calls=calls((0, 1150), (0, 1190), (1, 1200)), stall_ms={7: 30.0}, cpu_s={7: 1.1})
    assert classify_burst(facts).route_class == CPU_THREADS


def test_an_error_fails_whatever_else_happened() -> None:
    facts = BurstFacts(calls=calls((0, 5), (0, 6), ok=False), stall_ms={7: 900.0})
    verdict = classify_burst(facts)
    assert verdict.route_class == FAILS
    assert verdict.errors == ("http_500",)


def test_over_repeats_the_most_severe_class_counts() -> None:
    good = classify_burst(BurstFacts(calls=calls((0, 300), (0, 300)), stall_ms={7: 1.0}))
    bad = classify_burst(BurstFacts(calls=calls((0, 300), (300, 600)), stall_ms={7: 600.0}))
    assert route_class([good, bad]) == BLOCKS


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(text)
    return path


def test_scenario_file_reads_bursts_and_gradio(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        'health = "/up"\n[[burst]]\npath = "/a"\nquery = {x = 1, y = true}\n'
        '[[burst]]\nmethod = "POST"\npath = "/b"\njson = {k = "v"}\nn = 2\nrepeats = 3\n'
        '[[gradio]]\napi_name = "/predict"\ninputs = ["hi", 2]\n',
    )
    scenario = load_scenario_file(path)
    assert scenario.health == "/up"
    assert scenario.burst[0].url_path == "/a?x=1&y=true"
    assert scenario.burst[1].json_body == {"k": "v"}
    assert scenario.labels == ["GET /a", "POST /b", "gradio /predict"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[[burst]]\npath = "/a"\nn = 0\n', "burst[0].n = 0: Input should be greater than or equal to 1"),
        ('[[burst]]\npath = "a"\n', "burst[0].path = 'a': expected a path starting with /"),
        ('[[burst]]\npath = "/a"\nmethod = "FETCH"\n', "burst[0].method = 'FETCH': Input should be"),
        ('[[burst]]\npath = "/a"\nspeed = 3\n', "burst[0].speed = 3: Extra inputs are not permitted"),
        ("[[burst]]\nn = 2\n", "burst[0].path: Field required"),
        ('health = "/h"\n', "no [[burst]] or [[gradio]] entry"),
        ("[[burst]\n", "not valid TOML"),
    ],
)
def test_scenario_file_errors_name_file_key_and_value(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ScenarioFileError) as caught:
        load_scenario_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (AppSpec(target="tests.launcher.userapps.nothere:app"), "no module named 'tests.launcher.userapps.nothere'"),
        (AppSpec(target="tests.launcher.userapps.import_fails:app"), "RuntimeError: DATABASE_URL is not set"),
        (AppSpec(target="tests.launcher.userapps.apps:missing"), "has no attribute 'missing'"),
        (AppSpec(target="tests.launcher.userapps.apps:not_an_app"), "is a int, not an ASGI app"),
        (AppSpec(target="tests.launcher.userapps.apps:factory"), "add --factory"),
        (AppSpec(target="tests.launcher.userapps.apps:factory_raises", factory=True), "ValueError: MODEL_PATH"),
    ],
)
def test_bad_apps_are_one_line(spec: AppSpec, expected: str) -> None:
    with pytest.raises(AppLoadError) as caught:
        load(spec)
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


def test_good_apps_load() -> None:
    assert is_asgi_app(load(AppSpec(target="tests.launcher.userapps.apps:app")))
    assert is_asgi_app(load(AppSpec(target="tests.launcher.userapps.apps:factory", factory=True)))


def test_import_string_needs_a_colon() -> None:
    with pytest.raises(AppLoadError, match="expected MODULE:ATTR"):
        AppSpec(target="examples.shop")


def test_app_spec_round_trips_through_the_environment(tmp_path: Path) -> None:
    spec = AppSpec(target="m:a", factory=True, app_dir=str(tmp_path))
    assert AppSpec.from_env(spec.to_env()) == AppSpec(target="m:a", factory=True, app_dir=str(tmp_path.resolve()))
    assert AppSpec.from_env({}) is None
