"""Notable lines of a server's log: worker timeouts, kills, deaths and boots."""

from __future__ import annotations

import re

from launcher.probe.model import LogEvent

# (kind, pattern with a "pid" group) per server message worth attributing.
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("worker_timeout", re.compile(r"WORKER TIMEOUT \(pid:(?P<pid>\d+)\)")),
    ("worker_killed", re.compile(r"Worker \(pid:(?P<pid>\d+)\) was sent (?:SIGKILL|code \d+)")),
    ("worker_died", re.compile(r"Worker \(pid:(?P<pid>\d+)\) exited with code")),
    ("worker_died", re.compile(r"Child process \[(?P<pid>\d+)\] died")),
    # The launcher's own line, or a split member's (``launch[api-1]: ...``).
    ("worker_died", re.compile(r"launch(?:\[[\w-]+\])?: worker (?P<pid>\d+) exited without stopping")),
    ("worker_booted", re.compile(r"Booting worker with pid: (?P<pid>\d+)")),
    ("worker_booted", re.compile(r"Started server process \[(?P<pid>\d+)\]")),
    ("error", re.compile(r"^Traceback \(most recent call last\)")),
)


def parse_log_events(text: str) -> list[LogEvent]:
    """Events found in ``text``, in order."""
    events: list[LogEvent] = []
    for line in text.splitlines():
        for kind, pattern in _PATTERNS:
            match = pattern.search(line)
            if match:
                pid = match.groupdict().get("pid")
                events.append(LogEvent(kind=kind, pid=int(pid) if pid else None, line=line.strip()[:300]))
                break
    return events
