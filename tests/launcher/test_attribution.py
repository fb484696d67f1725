"""Attribution headers: on when the probe drives a server, off in a default serve and a default unit."""

from __future__ import annotations

import urllib.request

import pytest

from launcher.asgi import PID_HEADER, parse_timing
from launcher.child import ServerProcess, launch_command
from tests.conftest import builtin


def _get(url: str) -> tuple[dict[str, str], bytes]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return {k.lower(): v for k, v in response.headers.items()}, response.read()


def test_parse_timing() -> None:
    assert parse_timing('launch;dur=1.5;desc="100-200"') == (100, 200)
    assert parse_timing('app;dur=3, launch;dur=1;desc="7-9"') == (7, 9)
    assert parse_timing("other;dur=1") is None
    assert parse_timing(None) is None


def test_the_child_of_a_probe_asks_for_attribution_and_a_default_one_does_not() -> None:
    profile = builtin("uvicorn-1-sync")
    assert "--attribution" in launch_command(profile, fd=3)
    assert "--no-attribution" in launch_command(profile, fd=3, attribution=False)
    assert "--lab" in launch_command(profile, fd=3, lab=True)


@pytest.mark.e2e
@pytest.mark.parametrize("attribution", [True, False])
def test_headers_and_health_internals_follow_the_flag(attribution: bool) -> None:
    server = ServerProcess(profile=builtin("uvicorn-1-sync", model="none"), attribution=attribution, lab=True)
    server.start()
    try:
        headers, body = _get(server.url + "/health")
        join_headers, _ = _get(server.url + "/gradio_api/info")
        lab_status: int | None = None
        try:
            _get(server.url + "/lab/noawait")
        except urllib.error.HTTPError as exc:
            lab_status = exc.code
    finally:
        server.stop()
        server.cleanup()
    if attribution:
        assert headers[PID_HEADER] == str(server.pids[0])
        assert join_headers[PID_HEADER] == str(server.pids[0])  # Gradio's own routes carry it too
        assert parse_timing(headers["server-timing"]) is not None
        assert b'"pid"' in body
    else:
        assert PID_HEADER not in headers and "server-timing" not in headers
        assert PID_HEADER not in join_headers
        assert b'"pid"' not in body and b"now_ns" not in body
    # The lab route makes the write-up's mistake: a coroutine returned, never awaited.
    assert lab_status == 500


def test_a_default_systemd_unit_serves_without_attribution(tmp_path: object) -> None:
    from click.testing import CliRunner

    from launcher.cli import main

    result = CliRunner().invoke(main, ["systemd", "--profile", "uvicorn-1-offload"])
    assert result.exit_code == 0, result.output
    exec_start = next(line for line in result.output.splitlines() if line.startswith("ExecStart="))
    assert "--attribution" not in exec_start and "--lab" not in exec_start
