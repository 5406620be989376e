"""A short chaos run (``make chaos`` in small): every fault injected, no invariant violated.

The same code path as ``python -m ordo.bench.chaos``: a fresh stack of its own (its faults and
its dead-letter stream must not touch the other tests' stack), a steady load of alerts while each
service is SIGKILLed and restarted, NATS restarts, the paper venue fails and times out, and
stream messages are duplicated, replayed and corrupted; then the invariants.
"""

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
    settle_timeout=60.0,
    reconcile_timeout=30.0,
    reconcile_interval=2.0,
)

EXECUTION_GIVES_UP = (
    "known defect in services/execution: an approval whose placement keeps failing "
    "transiently (venue unavailable or timing out, breaker open, a crash in between) "
    "spends the kit's bounded delivery attempts and is dead-lettered; its order stays SUBMITTED "
    "at the OMS for ever: no terminal outcome, and a dead letter nobody explains. Fix: execution "
    "must settle every approval itself (look the order up; if the venue does not hold it, "
    "reject it and never create it afterwards) instead of leaving it to redelivery."
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

    _xfail_if_only_the_known_execution_defect(report)
    assert report.violations == 0, _describe(report)


def _xfail_if_only_the_known_execution_defect(report: ChaosReport) -> None:
    """Every violation concerns an order execution gave up on: the known defect, nothing else."""
    abandoned = set(report.abandoned_orders)
    violations = [v for check in report.checks for v in check.violations]
    explained = all(v.order_ids and v.order_ids <= abandoned for v in violations)
    if abandoned and violations and explained:
        pytest.xfail(f"{EXECUTION_GIVES_UP}\n{_describe(report)}")


def _describe(report: ChaosReport) -> str:
    lines = [f"logs and stores: {report.var_dir}"]
    for check in report.checks:
        lines.extend(f"{check.name}: {violation}" for violation in check.violations[:20])
    return "\n".join(lines)
