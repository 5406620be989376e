"""An order from creation to its end: risk decisions, venue reports, views."""

from decimal import Decimal

import pytest
from order_domain_builders import LATER, NOW, fill, new_order, order_spec, report, submitted_order

from ordo.contracts.enums import ExecutionStatus, OrderStatus, OrderType, Side, TimeInForce
from ordo.order.domain import (
    InvalidTransition,
    Order,
    OrderChanged,
    OrderFilled,
    ReportMismatch,
)

E = ExecutionStatus


def test_a_new_order_waits_for_the_risk_gate_with_its_spec() -> None:
    spec = order_spec(
        order_type=OrderType.LIMIT,
        time_in_force=TimeInForce.IOC,
        limit_price=Decimal("99.5"),
        reduce_only=True,
    )
    order = Order.new(spec, signal_id="sig-9", proposal_id="prop-9", now=NOW)

    assert order.status is OrderStatus.INITIALIZED
    assert order.spec() == spec
    assert (order.signal_id, order.proposal_id) == ("sig-9", "prop-9")
    assert order.filled_quantity == 0
    assert order.events == [OrderChanged("ord-1", 1, OrderStatus.INITIALIZED)]


def test_approval_submits_the_order_once() -> None:
    order = new_order()

    assert order.submit(LATER) is True
    assert order.submit(LATER) is False  # a redelivered approval

    assert order.status is OrderStatus.SUBMITTED
    assert order.version == 2
    assert order.updated_at == LATER


def test_denial_records_the_reason_and_ends_the_order() -> None:
    order = new_order()

    assert order.deny("MAX_NOTIONAL_PER_ORDER", LATER) is True
    assert order.deny("MAX_NOTIONAL_PER_ORDER", LATER) is False

    assert order.status is OrderStatus.DENIED
    assert order.reason == "MAX_NOTIONAL_PER_ORDER"
    assert not order.is_open
    with pytest.raises(InvalidTransition):
        order.submit(LATER)


def test_a_submitted_order_cannot_be_denied() -> None:
    order = submitted_order()
    with pytest.raises(InvalidTransition):
        order.deny("too late", LATER)


def test_a_venue_report_that_overtook_the_approval_is_applied() -> None:
    order = new_order()

    applied = order.apply_report(report(order, E.ACCEPTED), LATER)
    late_approval = order.submit(LATER)

    assert applied.status is OrderStatus.ACCEPTED
    assert late_approval is False
    assert order.status is OrderStatus.ACCEPTED


def test_acceptance_records_the_venue_order_id() -> None:
    order = submitted_order()

    applied = order.apply_report(report(order, E.ACCEPTED, venue_order_id="V-77"), LATER)

    assert applied.changed and applied.status_changed
    assert order.status is OrderStatus.ACCEPTED
    assert order.venue_order_id == "V-77"


def test_partial_then_full_fills_complete_the_order_at_the_weighted_average() -> None:
    order = submitted_order(quantity=Decimal("3"))

    first = order.apply_report(
        report(order, E.PARTIALLY_FILLED, "1", fill("f1", "1", "100", "0.1")), NOW
    )
    second = order.apply_report(report(order, E.FILLED, "3", fill("f2", "2", "103", "0.2")), NOW)

    assert first.status is OrderStatus.PARTIALLY_FILLED
    assert first.new_fill is not None and first.new_fill.fill_id == "f1"
    assert second.status is OrderStatus.FILLED
    assert order.filled_quantity == Decimal("3")
    assert order.average_fill_price == Decimal("102")
    assert order.fees == Decimal("0.3")
    assert order.fill_ids == {"f1", "f2"}
    assert not order.is_open


def test_a_market_order_may_fill_before_its_acceptance_arrives() -> None:
    order = submitted_order()

    order.apply_report(report(order, E.FILLED, "1", fill("f1", "1", "100")), NOW)
    stale = order.apply_report(report(order, E.ACCEPTED), LATER)

    assert order.status is OrderStatus.FILLED
    assert not stale.changed


def test_a_report_that_moves_nothing_changes_nothing() -> None:
    order = submitted_order(quantity=Decimal("2"))
    order.apply_report(report(order, E.PARTIALLY_FILLED, "1", fill("f1", "1", "100")), NOW)
    before = order.to_view()
    events_before = len(order.events)

    duplicate = report(order, E.PARTIALLY_FILLED, "1", fill("f1", "1", "100"))
    again = order.apply_report(duplicate, LATER)

    assert not again.changed
    assert again.new_fill is None
    assert order.to_view() == before
    assert len(order.events) == events_before


def test_a_late_partial_fill_after_the_full_fill_is_still_handed_to_the_position() -> None:
    order = submitted_order(quantity=Decimal("3"))

    order.apply_report(report(order, E.FILLED, "3", fill("f2", "2", "103")), NOW)
    late = order.apply_report(report(order, E.PARTIALLY_FILLED, "1", fill("f1", "1", "100")), NOW)

    assert late.new_fill is not None and late.new_fill.fill_id == "f1"
    assert late.status is OrderStatus.FILLED  # the older status is ignored
    assert order.average_fill_price == Decimal("102")


def test_a_cancel_after_a_partial_fill_keeps_what_was_filled() -> None:
    order = submitted_order(quantity=Decimal("2"))
    order.apply_report(report(order, E.PARTIALLY_FILLED, "0.5", fill("f1", "0.5", "100")), NOW)

    order.request_cancel("exit signal", NOW)
    order.apply_report(report(order, E.CANCELED, "0.5"), LATER)

    assert order.status is OrderStatus.CANCELED
    assert order.filled_quantity == Decimal("0.5")
    assert order.reason == "exit signal"


def test_a_fill_that_raced_the_cancel_completes_the_order() -> None:
    order = submitted_order()
    order.apply_report(report(order, E.ACCEPTED), NOW)
    order.request_cancel("exit signal", NOW)
    order.apply_report(report(order, E.CANCELED, "0"), NOW)

    raced = order.apply_report(report(order, E.FILLED, "1", fill("f1", "1", "100")), LATER)

    assert raced.previous_status is OrderStatus.CANCELED
    assert raced.status is OrderStatus.FILLED
    assert raced.new_fill is not None


def test_a_partial_fill_that_raced_the_cancel_leaves_the_order_canceled() -> None:
    order = submitted_order(quantity=Decimal("2"))
    order.apply_report(report(order, E.CANCELED, "0"), NOW)

    raced = order.apply_report(
        report(order, E.PARTIALLY_FILLED, "0.5", fill("f1", "0.5", "100")), LATER
    )

    assert order.status is OrderStatus.CANCELED
    assert order.filled_quantity == Decimal("0.5")
    assert raced.new_fill is not None
    assert raced.ignored_status is OrderStatus.PARTIALLY_FILLED


def test_a_stale_working_report_does_not_answer_a_pending_cancel() -> None:
    order = submitted_order(quantity=Decimal("2"))
    order.apply_report(report(order, E.PARTIALLY_FILLED, "1", fill("f1", "1", "100")), NOW)
    order.request_cancel("exit signal", NOW)

    stale = order.apply_report(report(order, E.ACCEPTED, "1"), LATER)

    assert order.status is OrderStatus.PENDING_CANCEL
    assert not stale.changed
    assert stale.ignored_status is OrderStatus.PARTIALLY_FILLED


def test_a_new_fill_during_a_pending_cancel_is_applied() -> None:
    order = submitted_order(quantity=Decimal("2"))
    order.apply_report(report(order, E.ACCEPTED), NOW)
    order.request_cancel("exit signal", NOW)

    order.apply_report(report(order, E.PARTIALLY_FILLED, "1", fill("f1", "1", "100")), NOW)
    order.apply_report(report(order, E.CANCELED, "1"), LATER)

    assert order.status is OrderStatus.CANCELED
    assert order.filled_quantity == Decimal("1")


def test_cancelling_a_finished_order_is_no_news() -> None:
    order = submitted_order()
    order.apply_report(report(order, E.FILLED, "1", fill("f1", "1", "100")), NOW)

    assert order.request_cancel("exit signal", LATER) is False
    assert order.status is OrderStatus.FILLED


def test_an_order_awaiting_the_risk_gate_cannot_be_cancelled_at_the_venue() -> None:
    with pytest.raises(InvalidTransition):
        new_order().request_cancel("exit signal", NOW)


def test_a_cancel_report_with_the_whole_quantity_filled_means_filled() -> None:
    order = submitted_order()

    order.apply_report(report(order, E.CANCELED, "1"), NOW)

    assert order.status is OrderStatus.FILLED


def test_a_venue_that_finishes_the_order_short_of_its_quantity_is_believed() -> None:
    order = submitted_order(quantity=Decimal("1"), reduce_only=True)

    order.apply_report(report(order, E.FILLED, "0.4", fill("f1", "0.4", "100")), NOW)

    assert order.status is OrderStatus.FILLED
    assert order.filled_quantity == Decimal("0.4")


def test_rejection_records_the_venue_reason() -> None:
    order = submitted_order()

    order.apply_report(report(order, E.REJECTED, reason="insufficient margin"), NOW)

    assert order.status is OrderStatus.REJECTED
    assert order.reason == "insufficient margin"


def test_a_stop_triggers_then_fills() -> None:
    order = submitted_order(order_type=OrderType.STOP_MARKET, stop_price=Decimal("90"))
    order.apply_report(report(order, E.ACCEPTED), NOW)

    order.apply_report(report(order, E.TRIGGERED), NOW)
    assert order.status is OrderStatus.TRIGGERED
    order.apply_report(report(order, E.FILLED, "1", fill("f1", "1", "89.9")), NOW)
    assert order.status is OrderStatus.FILLED


def test_without_fills_the_venue_average_price_is_used_until_fills_arrive() -> None:
    order = submitted_order(quantity=Decimal("2"))

    order.apply_report(report(order, E.PARTIALLY_FILLED, "1", average_price=Decimal("101")), NOW)
    assert order.average_fill_price == Decimal("101")

    order.apply_report(report(order, E.PARTIALLY_FILLED, "1", fill("f1", "1", "100.5")), NOW)
    assert order.average_fill_price == Decimal("100.5")


def test_each_new_fill_is_recorded_as_an_event_for_the_position() -> None:
    order = submitted_order(side=Side.SELL)
    order.events.clear()

    order.apply_report(report(order, E.FILLED, "1", fill("f1", "1", "100")), NOW)

    filled = [event for event in order.events if isinstance(event, OrderFilled)]
    changed = [event for event in order.events if isinstance(event, OrderChanged)]
    assert [(e.fill.fill_id, e.side, e.symbol) for e in filled] == [("f1", Side.SELL, "BTC/USDT")]
    assert changed == [OrderChanged("ord-1", order.version, OrderStatus.FILLED)]


@pytest.mark.parametrize(
    ("field", "value"),
    [("order_id", "ord-other"), ("account", "acct-2"), ("symbol", "ETH/USDT"), ("side", Side.SELL)],
)
def test_a_report_for_another_order_is_refused(field: str, value: object) -> None:
    order = submitted_order()
    with pytest.raises(ReportMismatch, match=field.split("_")[0]):
        order.apply_report(report(order, E.ACCEPTED, **{field: value}), NOW)


def test_the_view_shows_what_the_oms_knows() -> None:
    order = submitted_order(quantity=Decimal("2"))
    order.apply_report(
        report(order, E.PARTIALLY_FILLED, "1", fill("f1", "1", "100", "0.05"), venue_order_id="V1"),
        LATER,
    )

    view = order.to_view()

    assert view.order_id == "ord-1"
    assert view.status is OrderStatus.PARTIALLY_FILLED
    assert view.filled_quantity == Decimal("1")
    assert view.average_fill_price == Decimal("100")
    assert view.fees == Decimal("0.05")
    assert view.venue_order_id == "V1"
    assert view.version == order.version == 3
    assert (view.created_at, view.updated_at) == (NOW, LATER)
