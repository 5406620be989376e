"""The chaos run's invariants catch what they are meant to catch (pure: no stack)."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from ordo.bench.chaos import invariants
from ordo.bench.chaos.evidence import DeadLetter, Evidence
from ordo.bench.chaos.streams import StoredMessage
from ordo.contracts.enums import (
    DiscrepancyKind,
    ExecutionStatus,
    Intent,
    OrderStatus,
    OrderType,
    ReconciliationOutcome,
    Severity,
    Side,
    SignalOutcome,
    SignalSource,
)
from ordo.contracts.execution import ExecutionReport, Fill
from ordo.contracts.orders import OrderSpec, OrderView, PositionView
from ordo.contracts.reconciliation import DiscrepancyFound, ReconciliationCompleted
from ordo.contracts.risk import OrderApproved
from ordo.contracts.signals import SignalAccepted, SignalRequest

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
SETTLED = T0 + timedelta(minutes=5)
QTY = Decimal("0.001")
POISON = b"chaos: undecodable #1"
ACCOUNT, STRATEGY, VENUE, SYMBOL = "chaos", "chaos-trend", "paper", "BTC/USDT"


def accepted(signal_id: str, intent: Intent = Intent.ENTER_LONG) -> SignalAccepted:
    return SignalAccepted(
        correlation_id=signal_id,
        producer="signal",
        signal_id=signal_id,
        source=SignalSource.TRADINGVIEW,
        received_at=T0,
        signal=SignalRequest(
            account=ACCOUNT, strategy=STRATEGY, venue=VENUE, symbol=SYMBOL, intent=intent
        ),
    )


def order(order_id: str, signal_id: str, status: OrderStatus = OrderStatus.FILLED) -> OrderView:
    filled = QTY if status is OrderStatus.FILLED else Decimal(0)
    return OrderView(
        order_id=order_id,
        signal_id=signal_id,
        account=ACCOUNT,
        strategy=STRATEGY,
        venue=VENUE,
        symbol=SYMBOL,
        side=Side.BUY,
        order_type=OrderType.MARKET,
        quantity=QTY,
        status=status,
        filled_quantity=filled,
        version=3,
        created_at=T0,
        updated_at=T0,
    )


def position(quantity: Decimal) -> PositionView:
    return PositionView(
        account=ACCOUNT,
        strategy=STRATEGY,
        venue=VENUE,
        symbol=SYMBOL,
        quantity=quantity,
        realised_pnl=Decimal(0),
        fees=Decimal(0),
        version=1,
        updated_at=T0,
    )


def fill_report(order_id: str, venue_order_id: str, fill_id: str) -> ExecutionReport:
    return ExecutionReport(
        correlation_id="s-1",
        producer="execution",
        order_id=order_id,
        venue_order_id=venue_order_id,
        account=ACCOUNT,
        venue=VENUE,
        symbol=SYMBOL,
        side=Side.BUY,
        status=ExecutionStatus.FILLED,
        cumulative_quantity=QTY,
        fill=Fill(
            fill_id=fill_id,
            quantity=QTY,
            price=Decimal("60000"),
            fee=Decimal("0.06"),
            fee_currency="USDT",
            filled_at=T0,
        ),
    )


def run_after() -> ReconciliationCompleted:
    return ReconciliationCompleted(
        correlation_id="run-1",
        producer="reconciler",
        run_id="run-1",
        account=ACCOUNT,
        venue=VENUE,
        started_at=SETTLED + timedelta(seconds=1),
        finished_at=SETTLED + timedelta(seconds=2),
        outcome=ReconciliationOutcome.CLEAN,
        positions_compared=1,
        discrepancies=0,
    )


def poison_letter(service: str = "order") -> DeadLetter:
    return DeadLetter(
        service=service,
        original_subject="signal.accepted.v1",
        error="PoisonMessage: does not decode",
        attempts=1,
        body=POISON,
    )


def clean() -> Evidence:
    """One signal, one filled order, the position and the venue agreeing, a clean run."""
    return Evidence(
        sent_ids={"s-1"},
        announced={"s-1": accepted("s-1")},
        outcomes={"s-1": SignalOutcome.PLANNED},
        orders={"s-1": (order("o-1", "s-1"),)},
        positions=(position(QTY),),
        venue_positions={SYMBOL: QTY},
        reports=[fill_report("o-1", "paper-1", "paper-1-1")],
        settled_at=SETTLED,
        runs_after=[run_after()],
        discrepancies_after=[],
        dead_letters=[poison_letter()],
        poison_bodies={POISON: frozenset({"order"})},
        stored_poisons={POISON},
    )


def texts(check: invariants.Check) -> list[str]:
    return [violation.text for violation in check.violations]


def test_a_clean_run_violates_nothing() -> None:
    evidence = clean()
    outcome, kinds = invariants.one_terminal_outcome(evidence)
    checks = [
        outcome,
        invariants.no_order_created_twice(evidence),
        invariants.positions_equal_fills(evidence),
        invariants.reconciler_finds_nothing(evidence),
        invariants.dead_letters_explained(evidence),
    ]
    assert [texts(check) for check in checks] == [[]] * len(checks)
    assert kinds == {"filled": 1}
    assert all(check.checked > 0 for check in checks)


def test_a_signal_the_oms_never_recorded_is_lost() -> None:
    evidence = replace(clean(), outcomes={}, orders={})
    check, kinds = invariants.one_terminal_outcome(evidence)
    assert texts(check) == ["signal s-1: lost: the OMS has no record of it"]
    assert kinds == {"violated": 1}


def test_a_signal_only_announced_still_counts_as_accepted() -> None:
    evidence = replace(clean(), sent_ids=set(), announced={"s-2": accepted("s-2")})
    check, _ = invariants.one_terminal_outcome(evidence)
    assert "signal s-2: lost: the OMS has no record of it" in texts(check)


@pytest.mark.parametrize(
    "outcome",
    [
        SignalOutcome.UNPLANNABLE,
        SignalOutcome.REFUSED,
        SignalOutcome.QUEUED,
        SignalOutcome.DEQUEUED,
    ],
)
def test_a_signal_the_oms_made_no_order_of_is_a_terminal_outcome(outcome: SignalOutcome) -> None:
    evidence = replace(clean(), outcomes={"s-1": outcome}, orders={})
    check, kinds = invariants.one_terminal_outcome(evidence)
    assert check.passed
    assert kinds == {outcome.value: 1}


def test_a_refused_signal_with_an_order_is_a_violation() -> None:
    check, _ = invariants.one_terminal_outcome(
        replace(clean(), outcomes={"s-1": SignalOutcome.REFUSED})
    )
    assert texts(check) == ["signal s-1: recorded as refused, yet it has 1 order(s)"]


def test_a_signal_the_risk_gate_denied_is_a_terminal_outcome_with_its_orders() -> None:
    evidence = replace(
        clean(),
        outcomes={"s-1": SignalOutcome.DENIED},
        orders={"s-1": (order("o-1", "s-1", OrderStatus.DENIED),)},
    )
    check, kinds = invariants.one_terminal_outcome(evidence)
    assert check.passed
    assert kinds == {"denied": 1}


@pytest.mark.parametrize("outcome", [SignalOutcome.PLANNED, SignalOutcome.DENIED])
def test_a_signal_planned_without_orders_is_lost(outcome: SignalOutcome) -> None:
    check, _ = invariants.one_terminal_outcome(
        replace(clean(), outcomes={"s-1": outcome}, orders={})
    )
    assert texts(check) == [f"signal s-1: lost: {outcome.value}, but no order of it exists"]


def test_two_orders_for_one_entry_are_a_doubled_signal() -> None:
    orders = (order("o-1", "s-1"), order("o-2", "s-1"))
    check, _ = invariants.one_terminal_outcome(replace(clean(), orders={"s-1": orders}))
    assert texts(check) == ["signal s-1: doubled: 2 orders (o-1, o-2) for one enter_long signal"]
    assert check.violations[0].order_ids == {"o-1", "o-2"}


def test_a_reverse_may_become_two_orders() -> None:
    evidence = replace(
        clean(),
        announced={"s-1": accepted("s-1", Intent.REVERSE)},
        orders={"s-1": (order("o-1", "s-1"), order("o-2", "s-1"))},
    )
    check, kinds = invariants.one_terminal_outcome(evidence)
    assert check.passed
    assert kinds == {"filled+filled": 1}


def test_an_order_still_working_has_no_terminal_outcome() -> None:
    orders = (order("o-1", "s-1", OrderStatus.SUBMITTED),)
    check, _ = invariants.one_terminal_outcome(replace(clean(), orders={"s-1": orders}))
    assert texts(check) == ["signal s-1: order o-1 is still submitted: no terminal outcome"]
    assert check.violations[0].order_ids == {"o-1"}


def test_an_accepted_signal_never_announced_is_a_violation() -> None:
    check, _ = invariants.one_terminal_outcome(replace(clean(), announced={}))
    assert "never announced" in texts(check)[0]


def test_one_client_order_id_as_two_venue_orders_is_a_double_submission() -> None:
    reports = [fill_report("o-1", "paper-1", "paper-1-1"), fill_report("o-1", "paper-2", "p-2-1")]
    check = invariants.no_order_created_twice(
        replace(clean(), reports=reports, venue_positions={SYMBOL: 2 * QTY})
    )
    assert texts(check) == [
        "client order id o-1 became venue orders paper-1, paper-2",
        f"order o-1: the venue filled {2 * QTY} of an order for {QTY}",
        f"{SYMBOL}: the venue holds {2 * QTY}, the OMS {QTY}",
    ]


def test_the_same_report_twice_is_no_double_submission() -> None:
    report = fill_report("o-1", "paper-1", "paper-1-1")
    check = invariants.no_order_created_twice(replace(clean(), reports=[report, report]))
    assert check.passed


def test_a_venue_that_cannot_be_asked_fails_the_venue_check() -> None:
    check = invariants.no_order_created_twice(replace(clean(), venue_positions=None))
    assert texts(check) == [
        "the venue's snapshot could not be had: its positions were not compared"
    ]


def test_a_position_that_differs_from_its_fills_is_a_violation() -> None:
    check = invariants.positions_equal_fills(replace(clean(), positions=(position(2 * QTY),)))
    assert texts(check) == [
        f"position chaos/chaos-trend/paper/BTC/USDT is {2 * QTY}, its orders' fills sum to {QTY}"
    ]


def test_a_fill_applied_but_never_reported_is_a_violation() -> None:
    check = invariants.positions_equal_fills(replace(clean(), reports=[]))
    assert texts(check) == [f"order o-1: the OMS applied {QTY}, the venue reported fills of 0"]


def test_the_reconciler_must_have_run_after_the_load_and_found_nothing() -> None:
    found = DiscrepancyFound(
        correlation_id="run-1",
        producer="reconciler",
        run_id="run-1",
        account=ACCOUNT,
        venue=VENUE,
        kind=DiscrepancyKind.POSITION_MISMATCH,
        severity=Severity.WARNING,
        symbol=SYMBOL,
        detail="the venue holds 0.002 BTC/USDT and the OMS 0.001",
    )
    check = invariants.reconciler_finds_nothing(replace(clean(), discrepancies_after=[found]))
    assert texts(check) == [
        "run run-1: position_mismatch: the venue holds 0.002 BTC/USDT and the OMS 0.001"
    ]
    check = invariants.reconciler_finds_nothing(replace(clean(), runs_after=[]))
    assert texts(check) == [
        f"no reconciliation run that started after {SETTLED.isoformat()} completed"
    ]


def test_a_dead_letter_nobody_injected_is_unexplained() -> None:
    real = DeadLetter(
        service="execution",
        original_subject="risk.approved.v1",
        error="VenueUnavailable: paper: create_order failed (injected)",
        attempts=5,
        body=b"{}",
        order_ids=frozenset({"o-1"}),
    )
    evidence = replace(clean(), dead_letters=[poison_letter(), real])
    check = invariants.dead_letters_explained(evidence)
    assert texts(check) == [
        "unexplained dead letter from execution (risk.approved.v1, 5 attempts): "
        "VenueUnavailable: paper: create_order failed (injected)"
    ]
    assert invariants.abandoned_orders(evidence) == {"o-1"}


def test_an_injected_message_every_consumer_must_dead_letter() -> None:
    evidence = replace(clean(), poison_bodies={POISON: frozenset({"order", "execution"})})
    check = invariants.dead_letters_explained(evidence)
    assert texts(check) == [f"undecodable message {POISON!r} was not dead-lettered by execution"]


def test_approvals_execution_ran_out_of_attempts_on_are_abandoned_orders() -> None:
    def letter(service: str, subject: str, error: str, order_id: str) -> DeadLetter:
        return DeadLetter(service, subject, error, 5, b"{}", frozenset({order_id}))

    letters = [
        letter("execution", "risk.approved.v1", "CircuitOpenError: open", "o-1"),
        letter("execution", "risk.approved.v1", "PoisonMessage: delivered 6 times", "o-2"),
        letter("execution", "risk.approved.v1", "ValueError: a bug", "o-3"),
        letter("order", "exec.report.v1", "PoisonMessage: fill for unknown order", "o-4"),
    ]
    evidence = replace(clean(), dead_letters=letters)
    assert invariants.abandoned_orders(evidence) == {"o-1", "o-2"}


def test_a_dead_letter_names_the_orders_and_the_signal_of_its_message() -> None:
    approval = OrderApproved(
        correlation_id="s-1",
        producer="risk",
        proposal_id="p-1",
        account=ACCOUNT,
        orders=(
            OrderSpec(
                order_id="o-1",
                account=ACCOUNT,
                strategy=STRATEGY,
                venue=VENUE,
                symbol=SYMBOL,
                side=Side.BUY,
                quantity=QTY,
            ),
        ),
    )
    letter = DeadLetter.of(
        StoredMessage(
            sequence=7,
            subject="dlq.execution.risk.approved.v1",
            data=approval.to_json(),
            headers={
                "Ordo-Original-Subject": "risk.approved.v1",
                "Ordo-Error": "VenueUnavailable: down",
                "Ordo-Attempts": "5",
            },
        )
    )
    assert (letter.service, letter.original_subject, letter.attempts) == (
        "execution",
        "risk.approved.v1",
        5,
    )
    assert letter.order_ids == {"o-1"}
    assert letter.signal_id == "s-1"
