"""The user's app: import strings, the scenario file, per-route classes (no process started)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from launcher.probe.appprobe import AppProfileResult, recommend
from launcher.probe.model import Kind, RequestRecord
from launcher.probe.routes import (
    BLOCKS,
    CONCURRENT,
    CPU_THREADS,
    FAILS,
    SERIALIZED,
    BurstFacts,
    classify_burst,
    route_class,
)
from launcher.probe.scenario_file import ScenarioFileError, load_scenario_file
from launcher.userapp import AppLoadError, AppSpec, is_asgi_app, load
from tests.launcher.probe.records import app_result

MS = 1_000_000


def calls(*intervals: tuple[int, int], pid: int = 7, ok: bool = True) -> tuple[RequestRecord, ...]:
    """Requests of one burst as the probe client records them, each with the server's work interval."""
    return tuple(
        RequestRecord(
            kind=Kind.API,
            work="route",
            index=i,
            sent_ns=a * MS,
            received_ns=b * MS + 1,
            start_ns=a * MS,
            end_ns=b * MS,
            pid=pid,
            status=200 if ok else 500,
            error=None if ok else "http_500",
        )
        for i, (a, b) in enumerate(intervals)
    )


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
    assert scenario.target is None


def test_the_command_line_overrides_every_entrys_n_and_repeats(tmp_path: Path) -> None:
    path = _write(tmp_path, '[[burst]]\npath = "/a"\nn = 2\n[[gradio]]\napi_name = "/p"\nrepeats = 3\n')
    scenario = load_scenario_file(path)
    assert scenario.overridden() is scenario
    once = scenario.overridden(repeats=1)
    assert [(b.n, b.repeats) for b in once.burst] + [(g.n, g.repeats) for g in once.gradio] == [(2, 1), (4, 1)]
    wider = scenario.overridden(n=6)
    assert [(b.n, b.repeats) for b in wider.burst] + [(g.n, g.repeats) for g in wider.gradio] == [(6, 1), (6, 3)]


def test_scenario_file_states_a_target(tmp_path: Path) -> None:
    path = _write(tmp_path, '[[burst]]\npath = "/a"\n[target]\nrate = 4.5\nroute = "/a?x=1"\n')
    target = load_scenario_file(path).target
    assert target is not None and (target.rate, target.route, target.p99) == (4.5, "/a?x=1", "2s")


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
        ('[[burst]]\npath = "/a"\n[target]\nrate = "5/s"\nroute = "a"\n', "target.route = 'a': expected a path"),
        ('[[burst]]\npath = "/a"\n[target]\nrate = "5/s"\n', "target.route: Field required"),
        ('[[burst]]\npath = "/a"\n[target]\nrate = 5\nroute = "/a"\nburst = 3\n', "target.burst = 3: Extra inputs"),
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


# --- the app's Gradio demo: found wherever it is mounted, checked before any server starts --------------------


def _demo_shape() -> tuple[object, object]:
    from tests.launcher.userapps import demo_app

    return demo_app.app, demo_app.root_app


def test_a_demo_is_found_under_its_sub_path_and_at_the_root_with_its_event_names() -> None:
    from launcher.userapp import DemoMount, demo_mounts

    sub, root = _demo_shape()
    assert demo_mounts(sub) == (DemoMount(path="/demo", api_names=("/echo",)),)
    assert demo_mounts(root) == (DemoMount(path="/", api_names=("/echo",)),)
    assert demo_mounts(load(AppSpec(target="tests.launcher.userapps.apps:app"))) == ()


def test_a_demo_under_a_nested_mount_is_found_with_its_whole_path() -> None:
    from fastapi import FastAPI

    from launcher.userapp import demo_mounts

    sub, _ = _demo_shape()
    outer = FastAPI()
    outer.mount("/v1", sub)  # type: ignore[arg-type]
    assert [d.path for d in demo_mounts(outer)] == ["/v1/demo"]


SHAPE_ONE = "tests.launcher.userapps.demo_app:app"


@pytest.mark.parametrize(
    ("entry", "demos", "expected"),
    [
        ('api_name = "/echo"', (), "mounts no Gradio demo"),
        ('api_name = "/nope"', (("/demo", ("/echo",)),), "api_name = '/nope': the demo at /demo has no such event"),
        ('api_name = "/echo"\npath = "/ui"', (("/demo", ("/echo",)),), "path = '/ui': "),
        ('api_name = "/echo"', (("/a", ("/echo",)), ("/b", ("/echo",))), "several Gradio demos (/a, /b)"),
    ],
)
def test_a_click_that_cannot_reach_the_demo_is_one_line_before_any_server_starts(
    tmp_path: Path, entry: str, demos: tuple[tuple[str, tuple[str, ...]], ...], expected: str
) -> None:
    from launcher.probe.appprobe import AppProbeError, demo_path_of
    from launcher.userapp import AppShape, DemoMount

    path = tmp_path / "s.toml"
    path.write_text(f"[[gradio]]\n{entry}\n")
    scenario = load_scenario_file(path)
    shape = AppShape(demos=tuple(DemoMount(path=p, api_names=names) for p, names in demos))
    with pytest.raises(AppProbeError) as caught:
        demo_path_of(scenario.gradio[0], 0, shape, AppSpec(target=SHAPE_ONE), path)
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_demo_named_by_path_or_the_only_one_is_chosen(tmp_path: Path) -> None:
    from launcher.probe.appprobe import demo_path_of
    from launcher.userapp import AppShape, DemoMount

    path = tmp_path / "s.toml"
    path.write_text('[[gradio]]\napi_name = "/echo"\n[[gradio]]\nname = "b"\napi_name = "/echo"\npath = "/b/"\n')
    scenario = load_scenario_file(path)
    one = AppShape(demos=(DemoMount(path="/", api_names=("/echo",)),))
    two = AppShape(demos=(DemoMount(path="/a", api_names=()), DemoMount(path="/b", api_names=("/echo",))))
    assert demo_path_of(scenario.gradio[0], 0, one, AppSpec(target=SHAPE_ONE), path) == "/"
    assert demo_path_of(scenario.gradio[1], 1, two, AppSpec(target=SHAPE_ONE), path) == "/b"


def _app_result(name: str, backend: str, workers: int, makespan: float) -> AppProfileResult:
    return app_result(name, backend, workers, (makespan,), max_overlap=3)


@given(
    one=st.floats(min_value=0.01, max_value=100.0),
    many=st.floats(min_value=0.01, max_value=100.0),
    workers=st.integers(min_value=2, max_value=8),
    backend=st.sampled_from(["uvicorn", "gunicorn", "hypercorn", "granian", "gunicorn-asgi", "ray"]),
)
def test_an_app_with_a_demo_is_never_recommended_or_tied_on_several_processes(
    one: float, many: float, workers: int, backend: str
) -> None:
    """Whatever the clicks' figures (here every click succeeded, the multi-process one maybe faster)."""
    single = _app_result("uvicorn-1-sync", "uvicorn", 1, one)
    multi = _app_result(f"{backend}-{workers}-sync", backend, workers, many)
    split = _app_result(f"ray-split-{workers}-sync", "ray-split", workers, many)
    rec = recommend([multi, single, split], serves_demo=True)
    assert multi.profile not in (rec.profile, *rec.tied_with)
    assert "from " + str(workers) + " processes" in rec.rejected[multi.profile]
    assert rec.profile in {"uvicorn-1-sync", f"ray-split-{workers}-sync"}
    without = recommend([multi, single], serves_demo=False)
    assert "each with its own queue" not in without.rejected.get(multi.profile, "")


@pytest.mark.parametrize(
    ("path", "served"),
    [
        ("/health", True),
        ("/items/42", True),  # /items/{id}
        ("/items", False),
        ("/static/app.css", True),  # a mount that holds no demo: taken whole
        ("/demo", True),
        ("/demo/gradio_api/queue/join", True),
        ("/demonstration", False),
        ("/nope", False),
    ],
)
def test_an_apps_shape_tells_which_paths_it_serves(path: str, served: bool) -> None:
    from launcher.userapp import AppShape, DemoMount

    shape = AppShape(demos=(DemoMount(path="/demo"),), api_paths=("/health", "/items/*", "/static/*"))
    assert shape.routes_known
    assert shape.has_route(path) is served


def test_a_demo_at_the_root_serves_every_path_and_a_bare_app_lists_none() -> None:
    from launcher.userapp import AppShape, DemoMount

    assert AppShape(demos=(DemoMount(path="/"),), api_paths=("/health",)).has_route("/anything")
    assert not AppShape().routes_known


def test_a_split_queue_is_advised_as_a_set_up_to_change_not_as_broken_code() -> None:
    from launcher.probe.appprobe import QUEUE_SPLIT_ADVICE, _route_result
    from launcher.probe.routes import ADVICE
    from launcher.probe.scenario_file import GradioEndpoint

    endpoint = GradioEndpoint(api_name="/echo", inputs=["hi"], n=3)
    split = classify_burst(BurstFacts(calls=calls((0, 5), (0, 6), ok=False)))
    split = dataclasses.replace(split, errors=("queue_split",))
    assert _route_result(endpoint, [split]).advice == QUEUE_SPLIT_ADVICE
    broken = classify_burst(BurstFacts(calls=calls((0, 5), ok=False)))
    assert _route_result(endpoint, [broken]).advice == ADVICE[FAILS]
