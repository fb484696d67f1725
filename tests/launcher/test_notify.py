"""The sd_notify helpers on real Unix datagram sockets, and the launcher speaking them to "systemd"."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from launcher import notify, procs
from launcher.child import DEFAULT_START_TIMEOUT
from launcher.procs import group_alive
from tests.http import get_json


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    """A bound datagram socket on a filesystem path in tmp_path: (path, socket)."""
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    try:
        yield path, sock
    finally:
        sock.close()


@pytest.mark.parametrize(
    "fields",
    [
        {"READY": 1},
        {"READY": 1, "STATUS": "3 workers ready at http://127.0.0.1:8000", "MAINPID": 1234},
        {"X_LAUNCH_WORKERS": "1,2,3", "X_LAUNCH_READY_SECONDS": 7.25, "EMPTY": ""},
        {"STATUS": "a=b=c", "WATCHDOG": 1},
    ],
)
def test_format_parse_round_trip(fields: dict[str, str | int | float]) -> None:
    data = notify.format_message(fields)
    assert isinstance(data, bytes)
    assert notify.parse_message(data) == {key: str(value) for key, value in fields.items()}


def test_format_is_newline_separated_assignments() -> None:
    assert notify.format_message({"READY": 1, "STATUS": "up"}) == b"READY=1\nSTATUS=up"


def test_parse_ignores_lines_without_equals_and_keeps_the_last_value() -> None:
    assert notify.parse_message(b"READY=1\ngarbage\n\nSTATUS=a\nSTATUS=b\n") == {"READY": "1", "STATUS": "b"}
    assert notify.parse_message(b"") == {}
    assert notify.parse_message(b"STATUS=\xff") == {"STATUS": "\ufffd"}


@pytest.mark.parametrize("separator", ["\r", "\x0b", "\x1c", "\u2028"])
def test_parse_splits_on_newline_only(separator: str) -> None:
    status = f"left{separator}right"
    assert notify.parse_message(f"STATUS={status}".encode()) == {"STATUS": status}


def test_send_to_a_bound_path(receiver: tuple[str, socket.socket]) -> None:
    path, sock = receiver
    assert notify.send(path, {"READY": 1, "STATUS": "ok"}) is True
    assert notify.parse_message(sock.recv(4096)) == {"READY": "1", "STATUS": "ok"}


def test_send_to_an_abstract_address() -> None:
    name = f"launch-test-{os.getpid()}-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        sock.settimeout(5)
        assert notify.send(f"@{name}", {"STOPPING": 1}) is True
        assert sock.recv(4096) == b"STOPPING=1"


def test_send_to_nobody_returns_false(tmp_path: Path) -> None:
    assert notify.send(str(tmp_path / "absent.sock"), {"READY": 1}) is False
    assert notify.send(str(tmp_path / "no" / "such" / "dir.sock"), {"READY": 1}) is False
    assert notify.send(f"@launch-test-nobody-{uuid.uuid4().hex}", {"READY": 1}) is False
    regular = tmp_path / "file"
    regular.write_text("")
    assert notify.send(str(regular), {"READY": 1}) is False


def test_send_to_a_closed_socket_returns_false(tmp_path: Path) -> None:
    path = str(tmp_path / "closed.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.close()  # the path stays, nobody listens behind it
    assert notify.send(path, {"READY": 1}) is False


def test_listener_receives_and_times_out() -> None:
    listener = notify.Listener()
    folder = Path(listener.path).parent
    try:
        assert Path(listener.path).is_socket()
        assert notify.send(listener.path, {"READY": 1, "WORKER": 42}) is True
        assert notify.send(listener.path, {"WATCHDOG": 1, "WORKER": 42}) is True
        assert listener.receive(timeout=5) == {"READY": "1", "WORKER": "42"}
        assert listener.receive(timeout=5) == {"WATCHDOG": "1", "WORKER": "42"}
        started = time.monotonic()
        assert listener.receive(timeout=0.2) is None
        assert 0.15 <= time.monotonic() - started < 5
    finally:
        listener.close()
    assert not folder.exists()
    assert notify.send(listener.path, {"READY": 1}) is False
    listener.close()  # idempotent


def test_take_systemd_socket_pops_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", "/run/systemd/notify")
    assert notify.take_systemd_socket() == "/run/systemd/notify"
    assert "NOTIFY_SOCKET" not in os.environ
    assert notify.take_systemd_socket() is None
    monkeypatch.setenv("NOTIFY_SOCKET", "")
    assert notify.take_systemd_socket() is None
    assert "NOTIFY_SOCKET" not in os.environ


def receive_until(sock: socket.socket, key: str, proc: subprocess.Popen[bytes], timeout: float) -> dict[str, str]:
    """Messages until one has ``key=1``; fails if the process exits or time runs out first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(0.5)
        try:
            message = notify.parse_message(sock.recv(65536))
        except TimeoutError:
            if proc.poll() is not None:
                pytest.fail(f"launcher exited with {proc.returncode} before {key}=1")
            continue
        if message.get(key) == "1":
            return message
    pytest.fail(f"no {key}=1 within {timeout:g} s")


@pytest.mark.e2e
def test_launcher_tells_systemd_ready_then_stopping(tmp_path: Path) -> None:
    sock_path = str(tmp_path / "systemd.sock")
    log_path = tmp_path / "launch.log"
    env = {key: value for key, value in os.environ.items() if key not in ("WATCHDOG_USEC", "WATCHDOG_PID")}
    env.update(NOTIFY_SOCKET=sock_path, PYTHONUNBUFFERED="1")
    argv = [
        sys.executable,
        "-m",
        "launcher",
        "--profile",
        "uvicorn-3-sync",
        "--model",
        "none",
        "--port",
        "0",
        "--attribution",
    ]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock, open(log_path, "wb") as log:
        sock.bind(sock_path)
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,
            start_new_session=True,
        )
        try:
            try:
                ready = receive_until(sock, "READY", proc, timeout=DEFAULT_START_TIMEOUT)
            except BaseException:
                print(log_path.read_text(errors="replace"))
                raise
            # Checked at once: all of this must already hold when READY=1 is sent.
            workers = [int(p) for p in ready["X_LAUNCH_WORKERS"].split(",")]
            url = ready["X_LAUNCH_URL"]
            status, health = get_json(f"{url}/health", timeout=10)
            descendants = procs.descendants(proc.pid)
            assert int(ready["MAINPID"]) == proc.pid
            assert len(workers) == len(set(workers)) == 3
            assert set(workers) <= set(descendants), (workers, descendants)
            assert all(procs.is_alive(pid) for pid in workers)
            assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
            assert status == 200 and health["pid"] in workers
            assert ready["STATUS"] == f"3 workers ready at {url}"
            assert float(ready["X_LAUNCH_READY_SECONDS"]) > 0
            # Only the launcher speaks to systemd: no worker was handed the variable.
            for pid in workers:
                environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                assert not any(entry.startswith(b"NOTIFY_SOCKET=") for entry in environ), pid

            os.kill(proc.pid, signal.SIGTERM)
            # A Unix datagram is queued when sent, so STOPPING=1 is there even if the launcher has exited since.
            stopping = receive_until(sock, "STOPPING", proc, timeout=30)
            assert stopping.get("STATUS") == "stopping"
            assert proc.wait(timeout=30) == 0, log_path.read_text(errors="replace")
            deadline = time.monotonic() + 10
            while group_alive(proc.pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not group_alive(proc.pid), "processes left in the launcher's group 10 s after it exited"
            assert not any(procs.is_alive(pid) for pid in workers)
            assert "launch: serving uvicorn-3-sync at " + url in log_path.read_text(errors="replace")
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()


def _folder(root: Path, name: str, *, bound: bool, age_s: float, extra: str | None = None) -> socket.socket | None:
    """A listener's folder under ``root``, its mtime ``age_s`` in the past.

    ``bound``: its socket bound and held open; else as a SIGKILLed launcher leaves it (the file, no one receiving).
    """
    folder = root / f"{notify.FOLDER_PREFIX}{name}"
    folder.mkdir()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(folder / notify.SOCKET_NAME))
    if extra is not None:
        (folder / extra).write_text("not ours to remove")
    if not bound:
        sock.close()
    at = time.time() - age_s
    os.utime(folder, (at, at))
    return sock if bound else None


def test_a_sigkilled_launchers_folder_goes_with_the_next_listener_and_nothing_else_does(tmp_path: Path) -> None:
    live = _folder(tmp_path, "live", bound=True, age_s=3600)
    _folder(tmp_path, "stale", bound=False, age_s=3600)
    _folder(tmp_path, "young", bound=False, age_s=1)  # maybe between its creation and its bind
    _folder(tmp_path, "foreign", bound=False, age_s=3600, extra="notes.txt")
    (tmp_path / f"{notify.FOLDER_PREFIX}file").write_text("a file, not a folder")
    try:
        removed = notify.remove_stale(tmp_path)
    finally:
        assert live is not None
        live.close()
    assert removed == [tmp_path / f"{notify.FOLDER_PREFIX}stale"]
    left = sorted(p.name.removeprefix(notify.FOLDER_PREFIX) for p in tmp_path.iterdir())
    assert left == ["file", "foreign", "live", "young"]


def test_a_listener_removes_stale_folders_where_it_makes_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    _folder(tmp_path, "stale", bound=False, age_s=3600)
    listener = notify.Listener()
    try:
        assert [p.name for p in tmp_path.iterdir()] == [Path(listener.path).parent.name]
    finally:
        listener.close()
    assert list(tmp_path.iterdir()) == []
