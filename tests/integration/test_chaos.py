"""A short chaos run (``make chaos`` in small): every fault injected, no invariant violated.

The same code path as ``python -m ordo.bench.chaos``: a fresh stack of its own (its faults and
its dead-letter stream must not touch the other tests' stack), a steady load of alerts while each
service is SIGKILLed and restarted, NATS restarts, the paper venue fails and times out, and
stream messages are duplicated, replayed and corrupted; then the invariants.
"""

from decimal import Decimal
from pathlib import Path

import pytest

from ordo.bench.chaos import ChaosPlan, ChaosReport, run_chaos
from ordo.cli.stack import SERVICES

REPO = Path(__file__).resolve().parents[2]

SHORT = ChaosPlan(
    duration=30.0,
    rate=4.0,
    # Seven process faults (NATS, then each service) fit between 3 s and 25 s.
    process_fault_interval=3.5,
    message_fault_interval=0.5,
    poison_every=4,
    # Twice make chaos's timeouts: on a loaded machine the load reaches fewer orders, and a run in
    # which no create timed out would not have tested the unknown outcome at all.
    venue_timeout_probability=Decimal("0.2"),
    settle_timeout=60.0,
    reconcile_timeout=30.0,
    reconcile_interval=2.0,
)


@pytest.mark.timeout(600)
async def test_under_chaos_nothing_is_lost_and_nothing_is_done_twice(tmp_path: Path) -> None:
    report = await run_chaos(
        SHORT, config_source=REPO / "config" / "ordo.yaml", var_dir=tmp_path / "chaos"
    )

    assert report.signals["accepted"] > 0
    assert sorted(report.faults["service_kills"]) == sorted(str(s) for s in SERVICES)
    assert report.faults["nats_restarts"] >= 1
    venue = report.faults["venue_calls_faulted"]
    assert venue.get("create_order: VenueUnavailable", 0) > 0, venue
    assert venue.get("create_order: VenueTimeout", 0) > 0, venue
    for kind in ("duplicates", "replays", "undecodable"):
        assert report.faults_injected(kind) > 0, kind

    assert report.violations == 0, _describe(report)


def _describe(report: ChaosReport) -> str:
    lines = [f"logs and stores: {report.var_dir}"]
    for check in report.checks:
        lines.extend(f"{check.name}: {violation}" for violation in check.violations[:20])
    return "\n".join(lines)
