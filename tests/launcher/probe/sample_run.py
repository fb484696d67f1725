"""A small but complete synthetic probe run for the renderers' tests (HTML report, `launch report`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from launcher.probe.assess import assess
from launcher.probe.model import Claim, ClaimVerdict, ProbeRun, Recommendation, RequestRecord
from tests.launcher.probe.records import failed, health, ns, passed, profile, result, scenario, work

HOSTILE = "<script>alert('x')</script> & \"quoted\""
"""Text that must come out escaped wherever the data puts it."""

RUN_V1 = Path(__file__).parent / "data" / "run-v1.json"
""":func:`assessed_sample_run` as launch wrote it at schema version 1 (before version 2, written by that code):
the file a migration must still read."""


def threaded(record: RequestRecord, thread: int) -> RequestRecord:
    """``record`` as run on ``thread``."""
    return dataclasses.replace(record, thread=thread)


def answered(record: RequestRecord, at_s: float) -> RequestRecord:
    """A health check whose handler ran at ``at_s`` (the server's ``now_ns``)."""
    return dataclasses.replace(record, end_ns=ns(at_s))


def sample_run(*, complete: bool = True) -> ProbeRun:
    """Three profiles: one with thread sub-lanes, one with several pids and failures, one that did not start."""
    sleep = scenario(
        "sleep",
        [
            threaded(work("api", 101, 0.05, 1.05, index=0), 11),
            threaded(work("api", 101, 0.06, 1.06, index=1), 12),
            threaded(work("api", 101, 0.07, 1.07, index=2), 13),
            *(answered(health(101, 0.1 + 0.25 * i, 0.104 + 0.25 * i), 0.102 + 0.25 * i) for i in range(4)),
        ],
        verdicts=[passed("sleep"), passed("sleep")],
    )
    generate = scenario(
        "generate",
        [
            threaded(work("api", 101, 0.05, 0.65, what="generate", index=0, pipeline=(0.1, 0.6)), 11),
            threaded(work("api", 101, 0.05, 1.2, what="generate", index=1, pipeline=(0.6, 1.15)), 12),
            answered(health(101, 0.3, 0.5), 0.45),
        ],
        verdicts=[passed("generate")],
    )
    mixed = scenario(
        "mixed",
        [
            work("demo", 201, 1.0, 1.5, index=0),
            work("demo", None, None, None, sent_s=1.0, received_s=1.3, index=1, error="queue_split"),
            work("demo", None, None, None, sent_s=1.0, received_s=2.0, index=2),
            work("api", 202, 1.05, 1.55, index=3),
            work("api", 203, 1.05, 1.4, index=4, status=500),
            work("api", 203, 1.4, 1.9, index=5),
            health(202, 1.1, 1.12),
            health(None, 1.2, 1.7, error="timeout"),
        ],
        verdicts=[passed("mixed"), failed("mixed", expectation=f"hostile {HOSTILE}")],
    )
    fast = result(profile("uvicorn-1-sync", description=f"threads {HOSTILE}"), [sleep, generate])
    multi = result("gunicorn-3-sync", [mixed])
    down = result("hypercorn-1-sync", status="did_not_start", ready_seconds=None, error=f"port in use {HOSTILE}")
    return ProbeRun(
        created="2026-11-27T08:30:34+00:00",
        machine={"cores": 2, "python": "3.11.7", "platform": "Linux", "versions": {"uvicorn": "0.54.0"}},
        options={"requests": 3, "seconds": 1.0, "scenarios": ["sleep", "generate", "mixed", "liveness"]},
        profiles=(fast, multi, down),
        claims=(
            Claim(number=1, text="Sync handlers overlap.", verdict=ClaimVerdict.CONFIRMED, evidence="3 of 3 at once"),
            Claim(number=2, text=f"A claim {HOSTILE}", verdict=ClaimVerdict.REFUTED, evidence=f"evidence {HOSTILE}"),
        ),
        recommendation=Recommendation(
            profile=fast.profile,
            source=None,
            ready_seconds=1.0,
            why=f"every expectation held {HOSTILE}",
            rejected={"gunicorn-3-sync": "an expectation failed", "hypercorn-1-sync": "did not start"},
        ),
        complete=complete,
    )


def assessed_sample_run() -> ProbeRun:
    """:func:`sample_run` with every profile assessed, as the probe stores it."""
    run = sample_run()
    return dataclasses.replace(run, profiles=tuple(dataclasses.replace(p, assessment=assess(p)) for p in run.profiles))
