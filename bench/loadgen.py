"""Closed-loop load for a fixed duration: the probe's engine (aiohttp), wrk and hey.

Every generator runs as its own process (``taskset -c 1`` when pinned), is
given N connections and D seconds, and reports requests/s and latency
percentiles in the same shape (:class:`Load`).

The probe's engine is aiohttp on asyncio's default event loop, as in
:func:`launcher.probe.client.run_burst`. Two variants are measured:

- ``keepalive``: N workers on ONE shared ``ClientSession`` whose
  ``TCPConnector(limit=N)`` keeps N connections alive -- what the engine can do;
- ``newconn``: the same loop with ``force_close=True``, a new TCP connection
  per request -- the policy ``run_burst`` uses on purpose (each request is a
  separate user, so the kernel spreads them over workers);
- ``uvloop``: ``keepalive`` on uvloop's event loop instead of asyncio's (uvloop
  is installed with uvicorn[standard]; the probe does not use it today).

``python -m bench.loadgen URL -c N -d D [--newconn]`` runs the aiohttp
engine and prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import re
import resource
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bench.common import REPO, client_prefix, cpu_seconds, python
from launcher import lifeline
from launcher.probe.metrics import percentile

TOOLS = ("probe-keepalive", "probe-newconn", "probe-uvloop", "wrk", "hey")
"""Every load generator, in the order they are compared."""


@dataclass(kw_only=True)
class Load:
    """One run of one load generator."""

    tool: str
    connections: int
    seconds: float
    requests: int
    errors: int
    rate: float
    """Completed requests per second."""
    p50_ms: float
    p99_ms: float
    pinned: bool = False
    cpu_share: float | None = None
    """The generator's CPU time over its run time: near 1.0, it was the bottleneck."""
    server_cpu_us: float | None = None
    """The server's CPU time per completed request (µs), when its pids were given."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ToolError(RuntimeError):
    """A load generator failed or printed something unparseable."""


# --- the probe's engine (aiohttp) --------------------------------------------


async def aiohttp_closed_loop(url: str, connections: int, duration: float, *, keepalive: bool = True) -> dict[str, Any]:
    """N concurrent workers on one session hammer ``url`` for ``duration`` s; latencies in ns."""
    import aiohttp

    connector = aiohttp.TCPConnector(limit=connections, force_close=not keepalive)
    latencies: list[int] = []
    errors = 0
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        # One request first, so that the first real one does not pay for setting up.
        async with session.get(url) as response:
            await response.read()
        started = time.monotonic()
        cpu_started = time.process_time()
        deadline = started + duration

        async def worker() -> None:
            nonlocal errors
            while time.monotonic() < deadline:
                sent = time.perf_counter_ns()
                try:
                    async with session.get(url) as response:
                        await response.read()
                        ok = response.status == 200
                except (aiohttp.ClientError, OSError, TimeoutError):
                    ok = False
                if ok:
                    latencies.append(time.perf_counter_ns() - sent)
                else:
                    errors += 1

        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.monotonic() - started
        cpu = time.process_time() - cpu_started
    return {
        "requests": len(latencies),
        "errors": errors,
        "seconds": elapsed,
        "cpu_seconds": cpu,
        "latencies_ns": latencies,
    }


def _aiohttp_main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen")
    parser.add_argument("url")
    parser.add_argument("-c", "--connections", type=int, default=1)
    parser.add_argument("-d", "--duration", type=float, default=5.0)
    parser.add_argument("--newconn", action="store_true", help="a new connection per request (run_burst's policy)")
    parser.add_argument("--uvloop", action="store_true", help="on uvloop's event loop instead of asyncio's")
    args = parser.parse_args(argv)
    load = aiohttp_closed_loop(args.url, args.connections, args.duration, keepalive=not args.newconn)
    if args.uvloop:
        import uvloop

        result = uvloop.run(load)
    else:
        result = asyncio.run(load)
    latencies = [ns / 1e6 for ns in result.pop("latencies_ns")]
    result["p50_ms"] = percentile(latencies, 50)
    result["p99_ms"] = percentile(latencies, 99)
    print(json.dumps(result))


# --- native generators -------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if match is None:
        raise ToolError(f"unreadable duration {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(out: str, connections: int, duration: float) -> dict[str, Any]:
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE)
    if not (rate and total and p50 and p99):
        raise ToolError(f"unexpected wrk output: {out[-300:]!r}")
    errors = 0
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non2xx:
        errors += int(non2xx.group(1))
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if socket_errors:
        errors += sum(int(g) for g in socket_errors.groups())
    return {
        "requests": int(total.group(1)),
        "errors": errors,
        "seconds": duration,
        "rate": float(rate.group(1)),
        "p50_ms": _ms(p50.group(1)),
        "p99_ms": _ms(p99.group(1)),
    }


def parse_hey(out: str, connections: int, duration: float) -> dict[str, Any]:
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total_s = re.search(r"Total:\s+([\d.]+) secs", out)
    p50 = re.search(r"50% in ([\d.]+) secs", out)
    p99 = re.search(r"99% in ([\d.]+) secs", out)
    if not (rate and total_s and p50 and p99):
        raise ToolError(f"unexpected hey output: {out[-300:]!r}")
    ok = sum(int(n) for n in re.findall(r"\[200\]\s+(\d+) responses", out))
    other = sum(int(n) for code, n in re.findall(r"\[(\d+)\]\s+(\d+) responses", out) if code != "200")
    error_block = out.split("Error distribution:", 1)
    errors = other + (sum(int(n) for n in re.findall(r"\[(\d+)\]\s", error_block[1])) if len(error_block) > 1 else 0)
    return {
        "requests": ok,
        "errors": errors,
        "seconds": float(total_s.group(1)),
        "rate": float(rate.group(1)),
        "p50_ms": float(p50.group(1)) * 1e3,
        "p99_ms": float(p99.group(1)) * 1e3,
    }


def available(tool: str) -> bool:
    """Whether ``tool`` can be run here (the aiohttp engine always can)."""
    if tool == "probe-uvloop":
        return importlib.util.find_spec("uvloop") is not None
    if tool.startswith("probe-"):
        return True
    return shutil.which(tool) is not None


def command(tool: str, url: str, connections: int, duration: float) -> list[str]:
    if tool == "wrk":
        # One thread: every client gets one core when pinned; --latency for percentiles.
        return ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--timeout", "30s", "--latency", url]
    if tool == "hey":
        return ["hey", "-c", str(connections), "-z", f"{duration:g}s", "-t", "30", url]
    if tool.startswith("probe-"):
        argv = [python(), "-m", "bench.loadgen", url, "-c", str(connections), "-d", f"{duration:g}"]
        extra = {"probe-keepalive": [], "probe-newconn": ["--newconn"], "probe-uvloop": ["--uvloop"]}[tool]
        return argv + extra
    raise ValueError(f"unknown load generator {tool!r}")


def run_load(
    tool: str, url: str, connections: int, duration: float, *, pinned: bool, server_pids: Sequence[int] = ()
) -> Load:
    """Run ``tool`` against ``url`` and read its report.

    With ``server_pids``, the server's CPU time per request is measured too:
    unlike a rate, it hardly depends on what else the machine is doing.
    """
    argv = client_prefix(pinned) + command(tool, url, connections, duration)
    server_before = cpu_seconds(server_pids)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = lifeline.popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=duration + 60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise ToolError(f"{tool} did not finish within {duration + 60:g} s") from None
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_cpu = cpu_seconds(server_pids) - server_before
    child_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    if proc.returncode != 0:
        raise ToolError(f"{tool} exited with {proc.returncode}: {(err or out)[-300:]!r}")
    if tool == "wrk":
        data = parse_wrk(out, connections, duration)
    elif tool == "hey":
        data = parse_hey(out, connections, duration)
    else:
        raw = json.loads(out.strip().splitlines()[-1])
        data = {**raw, "rate": raw["requests"] / raw["seconds"] if raw["seconds"] else 0.0}
    # The aiohttp engine times its own load phase (its interpreter's start-up
    # is not load); wrk and hey start in milliseconds.
    cpu = float(data.get("cpu_seconds", child_cpu))
    return Load(
        tool=tool,
        connections=connections,
        seconds=float(data["seconds"]),
        requests=int(data["requests"]),
        errors=int(data["errors"]),
        rate=float(data["rate"]),
        p50_ms=float(data["p50_ms"]),
        p99_ms=float(data["p99_ms"]),
        pinned=pinned,
        cpu_share=cpu / float(data["seconds"]) if data["seconds"] else None,
        server_cpu_us=server_cpu / int(data["requests"]) * 1e6 if server_pids and data["requests"] else None,
    )


def best_tool() -> str:
    """The most efficient generator available, for measures that need a rate (wrk, then hey, then aiohttp)."""
    for tool in ("wrk", "hey", "probe-keepalive"):
        if available(tool):
            return tool
    return "probe-keepalive"


if __name__ == "__main__":
    _aiohttp_main()
