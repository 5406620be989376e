"""Reconciliation runs end to end on an SQLite store, with execution and the OMS faked.

The two request functions are injected, so no NATS is involved: the outbox's publisher only
records what it is given, and the assertions read the store and the outbox table.
"""

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select

from ordo.contracts.enums import DiscrepancyKind, ReconciliationOutcome, Severity
from ordo.contracts.execution import RequestVenueSnapshot, VenuePosition, VenueSnapshot
from ordo.contracts.orders import PositionView
from ordo.contracts.queries import PositionsView, QueryPositions
from ordo.contracts.reconciliation import DiscrepancyFound, ReconciliationCompleted
from ordo.contracts.subjects import Subject
from ordo.kit.breaker import CircuitOpenError
from ordo.kit.outbox import Outbox, OutgoingMessage
from ordo.kit.settings import OutboxSettings
from ordo.kit.store import Database
from ordo.reconciler import reconcile, store
from ordo.reconciler.config import ReconcileTarget
from ordo.reconciler.domain.compare import Tolerances
from ordo.reconciler.reconcile import Reconciler

BTC, ETH = "BTC/USDT", "ETH/USDT"
MAIN = ReconcileTarget(account="main", venue="paper")
SECOND = ReconcileTarget(account="second", venue="paper")
TOLERANCES = Tolerances(quantity_tolerance=Decimal("0.0001"), critical_notional=Decimal(1000))


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class FakeSides:
    """What the venue and the OMS hold per account, and the requests they were sent."""

    venue: dict[str, dict[str, str]] = field(default_factory=dict)
    oms: dict[str, dict[str, str]] = field(default_factory=dict)
    venue_fails: dict[str, Exception] = field(default_factory=dict)
    oms_fails: dict[str, Exception] = field(default_factory=dict)
    answer_for_account: dict[str, str] = field(default_factory=dict)
    asked: list[RequestVenueSnapshot | QueryPositions] = field(default_factory=list)

    async def venue_snapshot(self, request: RequestVenueSnapshot) -> VenueSnapshot:
        self.asked.append(request)
        if request.account in self.venue_fails:
            raise self.venue_fails[request.account]
        holdings = self.venue.get(request.account, {})
        return VenueSnapshot.caused_by(
            request,
            producer="execution",
            account=self.answer_for_account.get(request.account, request.account),
            venue=request.venue,
            taken_at=datetime(2025, 1, 1, tzinfo=UTC),
            positions=tuple(
                VenuePosition(symbol=s, quantity=Decimal(q)) for s, q in holdings.items()
            ),
        )

    async def oms_positions(self, query: QueryPositions) -> PositionsView:
        self.asked.append(query)
        assert query.account is not None and query.venue is not None
        if query.account in self.oms_fails:
            raise self.oms_fails[query.account]
        held = self.oms.get(query.account, {})
        return PositionsView.caused_by(
            query,
            producer="order",
            positions=tuple(_position(query.account, query.venue, s, q) for s, q in held.items()),
        )


def _position(account: str, venue: str, symbol: str, quantity: str) -> PositionView:
    return PositionView(
        account=account,
        strategy="trend",
        venue=venue,
        symbol=symbol,
        quantity=Decimal(quantity),
        average_entry=Decimal(100),
        realised_pnl=Decimal(0),
        fees=Decimal(0),
        version=1,
        updated_at=datetime(2025, 1, 1, tzinfo=UTC),
    )


@dataclass
class Harness:
    db: Database
    sides: FakeSides
    clock: Clock
    published: list[OutgoingMessage]
    make: Callable[..., Reconciler]
    kit_outbox: Outbox

    def reconciler(self, *targets: ReconcileTarget) -> Reconciler:
        return self.make(targets or (MAIN,))

    async def runs(self) -> list[dict[str, Any]]:
        return await self._rows(select(store.runs).order_by(store.runs.c.started_at))

    async def discrepancies(self) -> list[dict[str, Any]]:
        return await self._rows(select(store.discrepancies).order_by(store.discrepancies.c.id))

    async def outbox(self) -> list[tuple[str, dict[str, Any]]]:
        outbox = store.messaging.outbox
        rows = await self._rows(select(outbox).order_by(outbox.c.seq))
        return [(row["subject"], json.loads(row["payload"])) for row in rows]

    async def _rows(self, query: Any) -> list[dict[str, Any]]:
        async with self.db.session() as session:
            return [dict(row._mapping) for row in (await session.execute(query)).all()]


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'reconciler.db'}")
    await db.create_all(store.metadata)
    published: list[OutgoingMessage] = []

    async def publish(outgoing: OutgoingMessage) -> None:
        published.append(outgoing)

    outbox = Outbox(db, store.messaging, publish, OutboxSettings(), registry=CollectorRegistry())
    sides = FakeSides()
    clock = Clock(datetime(2025, 3, 1, 12, 0, tzinfo=UTC))

    def make(targets: tuple[ReconcileTarget, ...]) -> Reconciler:
        return Reconciler(
            outbox,
            targets,
            TOLERANCES,
            venue_snapshot=sides.venue_snapshot,
            oms_positions=sides.oms_positions,
            clock=clock,
        )

    yield Harness(db, sides, clock, published, make, outbox)
    await db.close()


def completions(outbox: list[tuple[str, dict[str, Any]]]) -> list[ReconciliationCompleted]:
    return [
        ReconciliationCompleted.model_validate(payload)
        for subject, payload in outbox
        if subject == str(Subject.RECON_RUN)
    ]


# -- a clean account ----------------------------------------------------------------------------


async def test_an_account_that_agrees_makes_a_clean_run_and_announces_it(harness: Harness) -> None:
    harness.sides.venue["main"] = {BTC: "1.5", ETH: "2"}
    harness.sides.oms["main"] = {BTC: "1.5", ETH: "2"}

    [run] = await harness.reconciler(MAIN).reconcile_all()

    [row] = await harness.runs()
    assert row["run_id"] == run.run_id
    assert (row["account"], row["venue"], row["outcome"]) == ("main", "paper", "clean")
    assert (row["positions_compared"], row["discrepancy_count"], row["error"]) == (2, 0, None)
    assert await harness.discrepancies() == []
    [completed] = completions(await harness.outbox())
    assert completed.outcome is ReconciliationOutcome.CLEAN
    assert (completed.run_id, completed.correlation_id) == (run.run_id, run.run_id)
    assert (completed.positions_compared, completed.discrepancies) == (2, 0)
    assert completed.producer == "reconciler"


async def test_the_run_is_published_once_recorded(harness: Harness) -> None:
    await harness.reconciler(MAIN).reconcile_all()

    assert [m.subject for m in harness.published] == [str(Subject.RECON_RUN)]
    assert harness.published[0].stream == "RECON"


async def test_both_sides_are_asked_about_the_account_under_the_run_id(harness: Harness) -> None:
    [run] = await harness.reconciler(MAIN).reconcile_all()

    snapshot_request, positions_query = harness.sides.asked
    assert isinstance(snapshot_request, RequestVenueSnapshot)
    assert isinstance(positions_query, QueryPositions)
    assert (snapshot_request.account, snapshot_request.venue) == ("main", "paper")
    assert (positions_query.account, positions_query.venue) == ("main", "paper")
    assert positions_query.include_flat is True
    assert {snapshot_request.correlation_id, positions_query.correlation_id} == {run.run_id}
    assert {snapshot_request.producer, positions_query.producer} == {"reconciler"}


async def test_a_position_flat_in_the_oms_and_absent_at_the_venue_is_compared_and_clean(
    harness: Harness,
) -> None:
    harness.sides.oms["main"] = {BTC: "0"}

    [run] = await harness.reconciler(MAIN).reconcile_all()

    assert run.outcome is ReconciliationOutcome.CLEAN
    assert run.positions_compared == 1


# -- a drifted position -------------------------------------------------------------------------


async def test_a_drifted_position_is_recorded_and_announced_as_a_discrepancy(
    harness: Harness,
) -> None:
    harness.sides.venue["main"] = {BTC: "2", ETH: "1"}
    harness.sides.oms["main"] = {BTC: "1.5", ETH: "1"}

    [run] = await harness.reconciler(MAIN).reconcile_all()

    [row] = await harness.runs()
    assert (row["outcome"], row["positions_compared"], row["discrepancy_count"]) == (
        "discrepancies",
        2,
        1,
    )
    [found] = await harness.discrepancies()
    assert found["run_id"] == run.run_id
    assert (found["kind"], found["severity"], found["symbol"]) == (
        "position_mismatch",
        "warning",
        BTC,
    )
    assert (found["venue_value"], found["oms_value"]) == (Decimal(2), Decimal("1.5"))
    assert found["found_at"] == run.finished_at
    assert "a difference of 0.5" in found["detail"]


async def test_the_discrepancies_are_announced_before_the_run_that_found_them(
    harness: Harness,
) -> None:
    harness.sides.venue["main"] = {BTC: "2", ETH: "30"}
    harness.sides.oms["main"] = {BTC: "1.5"}

    [run] = await harness.reconciler(MAIN).reconcile_all()

    outbox = await harness.outbox()
    assert [subject for subject, _ in outbox] == [
        str(Subject.RECON_DISCREPANCY),
        str(Subject.RECON_DISCREPANCY),
        str(Subject.RECON_RUN),
    ]
    btc, eth = (DiscrepancyFound.model_validate(payload) for _, payload in outbox[:2])
    assert (btc.symbol, btc.severity, btc.venue_value, btc.oms_value) == (
        BTC,
        Severity.WARNING,
        Decimal(2),
        Decimal("1.5"),
    )
    # Nothing values ETH (no OMS entry, no mark): a difference that cannot be valued is critical.
    assert (eth.symbol, eth.severity) == (ETH, Severity.CRITICAL)
    assert {btc.kind, eth.kind} == {DiscrepancyKind.POSITION_MISMATCH}
    assert {btc.run_id, eth.run_id, btc.correlation_id} == {run.run_id}
    assert (btc.account, btc.venue) == ("main", "paper")
    [completed] = completions(outbox)
    assert completed.outcome is ReconciliationOutcome.DISCREPANCIES
    assert completed.discrepancies == 2


# -- a side that cannot be asked ----------------------------------------------------------------


async def test_a_venue_that_times_out_fails_the_run_and_the_other_account_is_still_reconciled(
    harness: Harness,
) -> None:
    harness.sides.venue_fails["main"] = TimeoutError()
    harness.sides.venue["second"] = {BTC: "1"}
    harness.sides.oms["second"] = {BTC: "1"}

    runs = await harness.reconciler(MAIN, SECOND).reconcile_all()

    assert [(r.account, r.outcome) for r in runs] == [
        ("main", ReconciliationOutcome.FAILED),
        ("second", ReconciliationOutcome.CLEAN),
    ]
    failed, clean = await harness.runs()
    assert (failed["account"], failed["outcome"]) == ("main", "failed")
    assert failed["error"] == "asking for the venue snapshot (execution) failed: TimeoutError"
    assert (failed["positions_compared"], failed["discrepancy_count"]) == (0, 0)
    assert (clean["account"], clean["outcome"], clean["error"]) == ("second", "clean", None)
    announced = completions(await harness.outbox())
    assert [(c.account, c.outcome, c.error) for c in announced] == [
        ("main", ReconciliationOutcome.FAILED, failed["error"]),
        ("second", ReconciliationOutcome.CLEAN, None),
    ]


async def test_the_oms_is_not_asked_when_the_venue_could_not_be(harness: Harness) -> None:
    harness.sides.venue_fails["main"] = TimeoutError()

    await harness.reconciler(MAIN).reconcile_all()

    assert [type(r) for r in harness.sides.asked] == [RequestVenueSnapshot]


async def test_an_open_breaker_towards_the_oms_fails_the_run_with_its_reason(
    harness: Harness,
) -> None:
    harness.sides.oms_fails["main"] = CircuitOpenError("nats")

    [run] = await harness.reconciler(MAIN).reconcile_all()

    assert run.outcome is ReconciliationOutcome.FAILED
    assert run.error == (
        "asking for the OMS positions failed: CircuitOpenError: "
        "circuit breaker 'nats' is open: the call was not attempted"
    )
    [row] = await harness.runs()
    assert row["error"] == run.error


async def test_a_snapshot_of_another_account_is_not_compared(harness: Harness) -> None:
    harness.sides.answer_for_account["main"] = "second"
    harness.sides.venue["main"] = {BTC: "5"}

    [run] = await harness.reconciler(MAIN).reconcile_all()

    assert run.outcome is ReconciliationOutcome.FAILED
    assert run.error == "execution answered for second/paper, not main/paper"
    assert await harness.discrepancies() == []


async def test_an_unexpected_error_asking_a_side_is_a_failed_run_and_the_others_go_on(
    harness: Harness,
) -> None:
    # E.g. Redis, which holds the breakers' state, is down: not a timeout, still no answer.
    harness.sides.venue_fails["main"] = ConnectionError("Redis at 127.0.0.1:6379 refused")
    harness.sides.venue["second"] = {BTC: "1"}
    harness.sides.oms["second"] = {BTC: "1"}

    runs = await harness.reconciler(MAIN, SECOND).reconcile_all()

    assert [(r.account, r.outcome) for r in runs] == [
        ("main", ReconciliationOutcome.FAILED),
        ("second", ReconciliationOutcome.CLEAN),
    ]
    failed, _ = await harness.runs()
    assert failed["error"] == (
        "asking for the venue snapshot (execution) failed: "
        "ConnectionError: Redis at 127.0.0.1:6379 refused"
    )
    announced = completions(await harness.outbox())
    assert [(c.account, c.outcome) for c in announced] == [
        ("main", ReconciliationOutcome.FAILED),
        ("second", ReconciliationOutcome.CLEAN),
    ]


async def test_a_comparison_that_fails_is_a_failed_run(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> list[object]:
        raise ArithmeticError("a bug in the comparison")

    monkeypatch.setattr(reconcile, "compare_positions", broken)
    harness.sides.venue["main"] = {BTC: "1"}

    [run] = await harness.reconciler(MAIN).reconcile_all()

    assert run.outcome is ReconciliationOutcome.FAILED
    assert run.error == "comparing the positions failed: ArithmeticError: a bug in the comparison"
    [row] = await harness.runs()
    assert (row["outcome"], row["error"]) == ("failed", run.error)


async def test_a_run_that_cannot_be_recorded_does_not_stop_the_others(harness: Harness) -> None:
    third = ReconcileTarget(account="third", venue="paper")
    run_ids = iter(["run-1", "run-1", "run-3"])  # the second run cannot be stored
    reconciler = Reconciler(
        harness.kit_outbox,
        (MAIN, SECOND, third),
        TOLERANCES,
        venue_snapshot=harness.sides.venue_snapshot,
        oms_positions=harness.sides.oms_positions,
        clock=harness.clock,
        new_run_id=lambda: next(run_ids),
    )

    runs = await reconciler.reconcile_all()

    assert [r.account for r in runs] == ["main", "third"]
    assert sorted(row["account"] for row in await harness.runs()) == ["main", "third"]


# -- bounded history ----------------------------------------------------------------------------


async def test_runs_older_than_the_retention_are_pruned_with_their_discrepancies(
    harness: Harness,
) -> None:
    harness.sides.venue["main"] = {BTC: "2"}
    reconciler = harness.reconciler(MAIN)
    now = harness.clock.now
    harness.clock.now = now - timedelta(days=31)
    [old] = await reconciler.reconcile_all()
    harness.clock.now = now - timedelta(days=29)
    [recent] = await reconciler.reconcile_all()
    harness.clock.now = now

    assert await reconciler.prune_history() == 1

    assert [row["run_id"] for row in await harness.runs()] == [recent.run_id]
    assert [row["run_id"] for row in await harness.discrepancies()] == [recent.run_id]
    assert old.run_id != recent.run_id
