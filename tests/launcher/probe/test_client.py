"""Naming request failures (pure: no server, no network)."""

from __future__ import annotations

import concurrent.futures

import aiohttp
import pytest

from launcher.probe.client import classify_demo_error, error_class


class TestClassifyDemoError:
    def test_cancelled_with_several_workers_is_a_split_queue(self) -> None:
        assert classify_demo_error(concurrent.futures.CancelledError(), workers=3) == "queue_split"

    def test_cancelled_with_one_worker_is_not(self) -> None:
        assert classify_demo_error(concurrent.futures.CancelledError(), workers=1) == "demo_CancelledError"

    @pytest.mark.parametrize("workers", [1, 3])
    def test_timeout(self, workers: int) -> None:
        assert classify_demo_error(TimeoutError(), workers=workers) == "timeout"
        assert classify_demo_error(concurrent.futures.TimeoutError(), workers=workers) == "timeout"

    @pytest.mark.parametrize(
        "message", ["Session not found.", "Client error '404 Not Found' for url 'http://x/gradio_api/queue/data'"]
    )
    def test_unknown_session_with_several_workers(self, message: str) -> None:
        assert classify_demo_error(ValueError(message), workers=3) == "queue_split"
        assert classify_demo_error(ValueError(message), workers=1) == "demo_ValueError"

    def test_other_errors_keep_their_type(self) -> None:
        assert classify_demo_error(RuntimeError("boom"), workers=3) == "demo_RuntimeError"
        assert classify_demo_error(ConnectionError("refused"), workers=1) == "demo_ConnectionError"


class TestErrorClass:
    @pytest.mark.parametrize(
        ("exc", "name"),
        [
            (TimeoutError(), "timeout"),
            (aiohttp.ServerDisconnectedError(), "disconnected"),
            (ConnectionResetError(), "reset"),
            (aiohttp.ClientPayloadError("cut"), "truncated"),
            (ValueError("x"), "ValueError"),
        ],
    )
    def test_names(self, exc: BaseException, name: str) -> None:
        assert error_class(exc) == name
