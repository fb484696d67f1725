"""A local Ray session started by a launcher, seen from outside: its processes and what they listen on.

Shared by the Ray and systemd tests; imports no Ray, so it loads without the ray extra.
"""

from __future__ import annotations

import os
import re
import time

import psutil

from launcher.backends.ray_reaper import OWNER_ENV

LOOPBACK = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})


def session_processes(launcher_pid: int) -> list[psutil.Process]:
    """Every process of the Ray session a launcher started, by pid.

    The launcher's descendants (its reaper, Ray's head under it, and everything
    below: a subreaper keeps orphans in its tree), every process carrying the
    marker the launcher puts in the head's environment, and their descendants.
    Both ways, since the marker alone misses Ray's agents: they blank their
    environment when they set their process title.
    """
    found: dict[int, psutil.Process] = {}
    try:
        found.update((p.pid, p) for p in psutil.Process(launcher_pid).children(recursive=True))
    except psutil.Error:
        pass
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(OWNER_ENV, "").startswith(f"{launcher_pid}-"):
                found.setdefault(proc.pid, proc)
                for child in proc.children(recursive=True):
                    found.setdefault(child.pid, child)
        except psutil.Error:
            continue
    return [found[pid] for pid in sorted(found) if _alive(found[pid])]


def kind(proc: psutil.Process) -> str:
    """What a process of the session is: ``reaper``, ``ray start``, ``gcs_server``, ``ray::ServeReplica``..."""
    try:
        argv = proc.cmdline()
    except psutil.Error:
        return "(gone)"
    line = " ".join(argv)
    if line.startswith("ray::"):
        # ray::ServeController.listen_for_change, ray::ServeReplica:launch:launch: the actor's class.
        return "ray::" + re.split(r"[.:\s]", line[len("ray::") :])[0]
    if "launcher.backends.ray_reaper" in line:
        return "reaper"
    if "ray.scripts.scripts start" in line or "bin/ray start" in line:
        return "ray start"
    program = os.path.basename(argv[0]) if argv else ""
    if program.startswith("python"):  # a script (monitor.py, dashboard.py, log_monitor.py) or a module
        script = next((a for a in argv[1:] if a.endswith(".py")), None)
        if script is not None:
            return os.path.basename(script)
        if "-m" in argv[:-1]:
            return argv[argv.index("-m") + 1]
    return program


def kinds(processes: list[psutil.Process]) -> set[str]:
    """The kinds of these processes (see :func:`kind`)."""
    return {kind(p) for p in processes}


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def still_running(processes: list[psutil.Process]) -> list[str]:
    """Those of ``processes`` still running (the same process: ``is_running`` checks its start time), described."""
    return [f"{p.pid} {kind(p)}" for p in processes if _alive(p)]


def wait_all_gone(processes: list[psutil.Process], seconds: float) -> tuple[list[str], float]:
    """Wait until none of ``processes`` runs; (those still running, seconds waited)."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if not still_running(processes):
            return [], time.monotonic() - started
        time.sleep(0.1)
    return still_running(processes), time.monotonic() - started


def stray_ray_processes(since: float) -> list[str]:
    """``ray::`` processes created since ``since`` (a process create time) that no live raylet owns.

    A live Ray instance's workers and agents are its raylet's descendants
    (another test's, another user's); one created during a test that has no
    raylet above it was left behind by a session that ended.
    """
    stray = []
    for proc in psutil.process_iter():
        try:
            line = " ".join(proc.cmdline())
            if not line.startswith("ray::") or proc.create_time() < since or not _alive(proc):
                continue
            if any(parent.name() == "raylet" for parent in proc.parents()):
                continue
            stray.append(f"{proc.pid} {kind(proc)} (parent {proc.ppid()})")
        except psutil.Error:
            continue
    return stray


def kill_all(processes: list[psutil.Process]) -> None:
    """SIGKILL those of ``processes`` still running: a failed test must not leave them behind."""
    for proc in processes:
        if _alive(proc):
            try:
                proc.kill()
            except psutil.Error:
                pass


def listening(processes: list[psutil.Process]) -> set[tuple[str, str]]:
    """(address, process name) of every TCP socket these processes listen on."""
    found = set()
    for proc in processes:
        try:
            found |= {
                (c.laddr.ip, proc.name()) for c in proc.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN
            }
        except psutil.Error:  # gone meanwhile
            continue
    return found
