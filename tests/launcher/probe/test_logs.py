"""Notable server log lines: gunicorn's and uvicorn's wording, as they print it."""

from __future__ import annotations

import pytest

from launcher.probe.logs import parse_log_events
from launcher.probe.model import LogEvent

GUNICORN_TIMEOUT_LOG = """\
[2026-11-27 08:30:00 +0000] [4271] [INFO] Starting gunicorn 25.1.0
[2026-11-27 08:30:00 +0000] [4271] [INFO] Listening at: http://127.0.0.1:8000 (4271)
[2026-11-27 08:30:00 +0000] [4271] [INFO] Using worker: uvicorn_worker.UvicornWorker
[2026-11-27 08:30:00 +0000] [4319] [INFO] Booting worker with pid: 4319
[2026-11-27 08:30:01 +0000] [4319] [INFO] Started server process [4319]
[2026-11-27 08:30:01 +0000] [4319] [INFO] Waiting for application startup.
[2026-11-27 08:30:01 +0000] [4319] [INFO] Application startup complete.
[2026-11-27 08:30:34 +0000] [4271] [CRITICAL] WORKER TIMEOUT (pid:4319)
[2026-11-27 08:30:35 +0000] [4271] [ERROR] Worker (pid:4319) was sent SIGKILL! Perhaps out of memory?
[2026-11-27 08:30:35 +0000] [4400] [INFO] Booting worker with pid: 4400
[2026-11-27 08:30:36 +0000] [4400] [INFO] Started server process [4400]
"""


def test_gunicorn_worker_timeout_sequence() -> None:
    events = parse_log_events(GUNICORN_TIMEOUT_LOG)
    assert [(e.kind, e.pid) for e in events] == [
        ("worker_booted", 4319),
        ("worker_booted", 4319),
        ("worker_timeout", 4319),
        ("worker_killed", 4319),
        ("worker_booted", 4400),
        ("worker_booted", 4400),
    ]
    timeout = events[2]
    assert timeout.line == "[2026-11-27 08:30:34 +0000] [4271] [CRITICAL] WORKER TIMEOUT (pid:4319)"


@pytest.mark.parametrize(
    ("line", "kind", "pid"),
    [
        ("[2026-11-27 08:30:34 +0000] [4271] [CRITICAL] WORKER TIMEOUT (pid:4319)", "worker_timeout", 4319),
        ("[ERROR] Worker (pid:4319) was sent SIGKILL! Perhaps out of memory?", "worker_killed", 4319),
        ("[2026-11-27 08:30:35 +0000] [4271] [ERROR] Worker (pid:4320) was sent code 134!", "worker_killed", 4320),
        ("[2026-11-27 08:30:35 +0000] [4271] [ERROR] Worker (pid:4321) exited with code 1", "worker_died", 4321),
        ("[2026-11-27 08:30:35 +0000] [4271] [WARNING] Worker (pid:4322) exited with code 3.", "worker_died", 4322),
        ("[INFO] Booting worker with pid: 4400", "worker_booted", 4400),
        ("INFO:     Child process [123] died", "worker_died", 123),
        ("INFO:     Started server process [98765]", "worker_booted", 98765),
        ("Traceback (most recent call last):", "error", None),
    ],
)
def test_one_line(line: str, kind: str, pid: int | None) -> None:
    assert parse_log_events(line) == [LogEvent(kind=kind, pid=pid, line=line)]


@pytest.mark.parametrize(
    "line",
    [
        "",
        "[2026-11-27 08:30:00 +0000] [4271] [INFO] Starting gunicorn 25.1.0",
        "[2026-11-27 08:30:40 +0000] [4319] [INFO] Worker exiting (pid: 4319)",
        'INFO:     127.0.0.1:51234 - "GET /health HTTP/1.1" 200 OK',
        "INFO:     Waiting for child process [123]",
        "INFO:     Uvicorn running on http://127.0.0.1:8000 (Press CTRL+C to quit)",
        '  File "/app/main.py", line 3, in handler',
        "    Traceback (most recent call last):",
    ],
)
def test_ordinary_lines_are_not_events(line: str) -> None:
    assert parse_log_events(line) == []


def test_uvicorn_multiprocess_log() -> None:
    text = """\
INFO:     Uvicorn running on http://127.0.0.1:8000 (Press CTRL+C to quit)
INFO:     Started parent process [100]
INFO:     Started server process [123]
INFO:     Started server process [124]
INFO:     Child process [123] died
INFO:     Waiting for child process [123]
INFO:     Started server process [130]
ERROR:    Exception in ASGI application
Traceback (most recent call last):
  File "/usr/lib/python3.11/site-packages/uvicorn/protocols/http/h11_impl.py", line 403, in run_asgi
RuntimeError: boom
"""
    events = parse_log_events(text)
    assert [(e.kind, e.pid) for e in events] == [
        ("worker_booted", 123),
        ("worker_booted", 124),
        ("worker_died", 123),
        ("worker_booted", 130),
        ("error", None),
    ]


def test_crlf_and_surrounding_whitespace() -> None:
    text = "  [INFO] Booting worker with pid: 4400  \r\n[CRITICAL] WORKER TIMEOUT (pid:4401)\r\n"
    events = parse_log_events(text)
    assert [(e.kind, e.pid, e.line) for e in events] == [
        ("worker_booted", 4400, "[INFO] Booting worker with pid: 4400"),
        ("worker_timeout", 4401, "[CRITICAL] WORKER TIMEOUT (pid:4401)"),
    ]


def test_long_lines_are_cut() -> None:
    line = "[CRITICAL] WORKER TIMEOUT (pid:4319) " + "x" * 1000
    (event,) = parse_log_events(line)
    assert event.pid == 4319
    assert len(event.line) == 300


def test_empty() -> None:
    assert parse_log_events("") == []
    assert parse_log_events("\n\n") == []
