"""Properties of applying venue reports: any arrival order, any repetition, never off the table."""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st
from order_domain_builders import LATER, NOW, fill, new_order, report, submitted_order

from ordo.contracts.enums import ExecutionStatus, OrderStatus
from ordo.contracts.execution import ExecutionReport, Fill
from ordo.order.domain import InvalidTransition, Order, Position, can_transition

QUANTITY = Decimal("3")
HALF = Decimal("0.5")


@dataclass(frozen=True)
class ReportPlan:
    """A report to build once the order exists: status, cumulative in halves, which fill."""

    status: ExecutionStatus
    cumulative_halves: int
    fill_index: int | None


@dataclass(frozen=True)
class Action:
    kind: str  # "report", "submit" or "cancel"
    plan: ReportPlan | None = None


fill_pools = st.lists(
    st.tuples(
        st.integers(1, 3),  # quantity in halves
        st.integers(9_000, 11_000),  # price in cents
        st.integers(0, 50),  # fee in cents
    ),
    max_size=5,
).map(
    lambda specs: [
        fill(f"f{i}", HALF * q, Decimal(p) / 100, str(Decimal(f) / 100))
        for i, (q, p, f) in enumerate(specs)
    ]
)

report_plans = st.builds(
    ReportPlan,
    status=st.sampled_from(list(ExecutionStatus)),
    cumulative_halves=st.integers(0, int(QUANTITY / HALF)),
    fill_index=st.none() | st.integers(0, 4),
)

actions = st.one_of(
    st.builds(Action, kind=st.just("report"), plan=report_plans),
    st.just(Action("submit")),
    st.just(Action("cancel")),
)


def build(order: Order, plan: ReportPlan, pool: Sequence[Fill]) -> ExecutionReport:
    the_fill = None
    if plan.fill_index is not None and plan.fill_index < len(pool):
        the_fill = pool[plan.fill_index]
    return report(order, plan.status, HALF * plan.cumulative_halves, the_fill)


def run(order: Order, plans: Sequence[ReportPlan], pool: Sequence[Fill]) -> None:
    for plan in plans:
        order.apply_report(build(order, plan, pool), NOW)


@given(fill_pools, st.lists(actions, max_size=25))
def test_reports_and_requests_never_move_the_order_off_the_table(
    pool: list[Fill], steps: list[Action]
) -> None:
    order = new_order(quantity=QUANTITY)
    handed_to_position: list[Fill] = []
    for step in steps:
        before, filled_before, version_before = order.status, order.filled_quantity, order.version
        if step.plan is not None:
            applied = order.apply_report(build(order, step.plan, pool), NOW)
            changed = applied.changed
            if applied.new_fill is not None:
                handed_to_position.append(applied.new_fill)
        else:
            try:
                changed = (
                    order.submit(NOW)
                    if step.kind == "submit"
                    else order.request_cancel("test", NOW)
                )
            except InvalidTransition:
                changed = False
        if order.status is not before:
            assert can_transition(before, order.status)
            # A finished order only moves again for a fill that raced its end.
            assert not before.is_terminal or order.filled_quantity > filled_before
        assert order.filled_quantity >= filled_before
        assert order.version == version_before + (1 if changed else 0)

    assert len({f.fill_id for f in handed_to_position}) == len(handed_to_position)
    assert order.fill_ids == {f.fill_id for f in handed_to_position}
    assert order.fees == sum((f.fee for f in handed_to_position), Decimal(0))
    assert order.filled_quantity >= sum((f.quantity for f in handed_to_position), Decimal(0))


@given(fill_pools, st.lists(report_plans, max_size=15), report_plans)
def test_applying_the_same_report_twice_equals_applying_it_once(
    pool: list[Fill], earlier: list[ReportPlan], last: ReportPlan
) -> None:
    once, twice = submitted_order(quantity=QUANTITY), submitted_order(quantity=QUANTITY)
    run(once, earlier, pool)
    run(twice, earlier, pool)
    the_report = build(once, last, pool)

    once.apply_report(the_report, NOW)
    twice.apply_report(the_report, NOW)
    again = twice.apply_report(the_report, LATER)

    assert not again.changed
    assert again.new_fill is None
    assert twice == once


@st.composite
def fill_sequences(draw: st.DrawFn) -> list[Fill]:
    """The fills of one order as the venue made them: quantities in quarters, any prices."""
    pieces = draw(st.lists(st.integers(1, 8), min_size=1, max_size=6))
    return [
        fill(
            f"f{i}",
            Decimal(quarters) / 4,
            Decimal(draw(st.integers(1, 10**7))) / 100,
            str(Decimal(draw(st.integers(0, 10**4))) / 10**4),
        )
        for i, quarters in enumerate(pieces)
    ]


def venue_reports(order: Order, fills: list[Fill]) -> list[ExecutionReport]:
    """One report per fill, each with the cumulative quantity as the venue counted it."""
    reports, cumulative = [], Decimal(0)
    for index, each in enumerate(fills):
        cumulative += each.quantity
        last = index == len(fills) - 1
        status = ExecutionStatus.FILLED if last else ExecutionStatus.PARTIALLY_FILLED
        reports.append(report(order, status, cumulative, each))
    return reports


@given(fill_sequences(), st.data())
def test_fill_reports_in_any_order_give_the_same_quantity_and_average(
    fills: list[Fill], data: st.DataObject
) -> None:
    quantity = sum((f.quantity for f in fills), Decimal(0))
    in_order = submitted_order(quantity=quantity)
    shuffled = submitted_order(quantity=quantity)
    reports = venue_reports(in_order, fills)
    arrival = data.draw(st.permutations(reports))
    repeats = data.draw(st.lists(st.sampled_from(reports), max_size=3))

    for each in reports:
        in_order.apply_report(each, NOW)
    for each in [*arrival, *repeats]:
        shuffled.apply_report(each, NOW)

    notional = sum((f.quantity * f.price for f in fills), Decimal(0))
    for order in (in_order, shuffled):
        assert order.status is OrderStatus.FILLED
        assert order.filled_quantity == quantity
        assert order.average_fill_price == notional / quantity
        assert order.fees == sum((f.fee for f in fills), Decimal(0))
        assert order.fill_ids == {f.fill_id for f in fills}


@given(fill_sequences(), st.data())
def test_any_subset_of_fill_reports_shows_the_furthest_cumulative_and_its_fills_average(
    fills: list[Fill], data: st.DataObject
) -> None:
    quantity = sum((f.quantity for f in fills), Decimal(0))
    order = submitted_order(quantity=quantity)
    reports = venue_reports(order, fills)
    arrived = data.draw(st.permutations(reports))[: data.draw(st.integers(1, len(reports)))]

    for each in arrived:
        order.apply_report(each, NOW)

    arrived_fills = [each.fill for each in arrived if each.fill is not None]
    furthest = max(each.cumulative_quantity for each in arrived)
    fills_quantity = sum((f.quantity for f in arrived_fills), Decimal(0))
    notional = sum((f.quantity * f.price for f in arrived_fills), Decimal(0))
    assert order.filled_quantity == furthest
    assert order.average_fill_price == notional / fills_quantity
    expected = OrderStatus.FILLED if furthest == quantity else OrderStatus.PARTIALLY_FILLED
    assert order.status is expected


def settle_all(order: Order, reports: Sequence[ExecutionReport]) -> Position:
    """Apply reports as the handler does: every fill the order had not seen moves the position."""
    position = Position.flat(order.account, order.strategy, order.venue, order.symbol, NOW)
    for each in reports:
        applied = order.apply_report(each, NOW)
        if applied.new_fill is not None:
            fill = applied.new_fill
            position.apply_fill(order.side, fill.quantity, fill.price, fill.fee, NOW)
    return position


@given(fill_sequences(), st.data())
def test_any_arrival_order_with_duplicates_ends_in_the_same_order_and_position(
    fills: list[Fill], data: st.DataObject
) -> None:
    quantity = sum((f.quantity for f in fills), Decimal(0))
    in_order, shuffled = submitted_order(quantity=quantity), submitted_order(quantity=quantity)
    accepted = report(in_order, ExecutionStatus.ACCEPTED, Decimal(0))
    reports = [accepted, *venue_reports(in_order, fills)]
    arrival = data.draw(st.permutations(reports))
    duplicates = data.draw(st.lists(st.sampled_from(reports), max_size=4))
    mixed = data.draw(st.permutations([*arrival, *duplicates]))

    expected_position = settle_all(in_order, reports)
    position = settle_all(shuffled, mixed)

    assert (shuffled.status, shuffled.filled_quantity, shuffled.fees, shuffled.fill_ids) == (
        in_order.status,
        in_order.filled_quantity,
        in_order.fees,
        in_order.fill_ids,
    )
    assert shuffled.average_fill_price == in_order.average_fill_price
    assert (position.quantity, position.fees, position.realised_pnl) == (
        expected_position.quantity,
        expected_position.fees,
        expected_position.realised_pnl,
    )
    # The running average divides once per fill in Decimal's 28 significant digits, so the
    # order of the fills can move its last digit; the store keeps 18 decimal places.
    assert position.average_entry is not None and expected_position.average_entry is not None
    assert abs(position.average_entry - expected_position.average_entry) < Decimal("1e-20")
