"""The netted position: signed quantity, average entry, realised P&L after all fees."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from order_domain_builders import ACCOUNT, LATER, NOW, STRATEGY, SYMBOL, VENUE

from ordo.contracts.enums import Side
from ordo.order.domain import InvalidFill, Position

D = Decimal
BUY, SELL = Side.BUY, Side.SELL
# Pro-rata fee releases divide; over many fills the rounding at 28 significant digits is far
# below anything a venue can settle, so round-trip sums are compared to this.
TOLERANCE = D("1e-15")


def flat() -> Position:
    return Position.flat(ACCOUNT, STRATEGY, VENUE, SYMBOL, NOW)


def test_a_flat_position_has_no_entry() -> None:
    position = flat()
    assert position.is_flat and position.side is None
    assert position.average_entry is None
    assert position.to_view().quantity == 0


def test_buying_opens_a_long_at_the_fill_price_and_realises_only_its_fee() -> None:
    position = flat()

    realised = position.apply_fill(BUY, D("2"), D("100"), D("0.2"), now=LATER)

    assert realised == 0  # no trade closed yet
    assert position.quantity == D("2")
    assert position.side is BUY
    assert position.average_entry == D("100")
    assert position.fees == D("0.2")
    assert position.realised_pnl == D("-0.2")  # the fee is paid: the account's money is gone
    assert position.open_entry_fees == D("0.2")
    assert (position.version, position.updated_at) == (1, LATER)


def test_adding_moves_the_average_entry_by_quantity() -> None:
    position = flat()
    position.apply_fill(BUY, D("1"), D("100"), D("0"))
    position.apply_fill(BUY, D("3"), D("104"), D("0"))
    assert position.average_entry == D("103")


def test_a_partial_close_realises_its_share_of_both_fees_and_keeps_the_entry() -> None:
    position = flat()
    position.apply_fill(BUY, D("2"), D("100"), D("0.4"))

    realised = position.apply_fill(SELL, D("1"), D("110"), D("0.1"))

    # (110 - 100) x 1 - the exit fee 0.1 - half of the entry fee 0.4
    assert realised == D("9.7")
    assert position.realised_pnl == D("10") - D("0.4") - D("0.1")  # every fee paid so far
    assert position.quantity == D("1")
    assert position.average_entry == D("100")
    assert position.open_entry_fees == D("0.2")
    assert position.fees == D("0.5")


def test_a_short_gains_when_the_price_falls() -> None:
    position = flat()
    position.apply_fill(SELL, D("2"), D("100"), D("0.2"))

    realised = position.apply_fill(BUY, D("2"), D("90"), D("0.2"))

    assert position.is_flat
    assert realised == D("20") - D("0.4")
    assert position.realised_pnl == D("19.6")


def test_a_fill_through_zero_closes_the_old_side_and_opens_the_new_one() -> None:
    position = flat()
    position.apply_fill(BUY, D("1"), D("100"), D("0.1"))

    realised = position.apply_fill(SELL, D("3"), D("120"), D("0.3"))

    # Closes 1 (a third of the fee), opens a short of 2 at 120 carrying the other two thirds.
    assert realised == D("20") - D("0.1") - D("0.1")
    assert position.quantity == D("-2")
    assert position.side is SELL
    assert position.average_entry == D("120")
    assert position.open_entry_fees == D("0.2")
    assert position.fees == D("0.4")


def test_going_flat_forgets_the_entry() -> None:
    position = flat()
    position.apply_fill(BUY, D("1"), D("100"), D("0.1"))
    position.apply_fill(SELL, D("1"), D("100"), D("0.1"))
    assert position.is_flat
    assert position.average_entry is None
    assert position.open_entry_fees == 0


def test_a_maker_rebate_adds_to_the_pnl() -> None:
    position = flat()
    position.apply_fill(BUY, D("1"), D("100"), D("-0.02"))
    realised = position.apply_fill(SELL, D("1"), D("100"), D("0.05"))
    assert realised == D("-0.03")


@pytest.mark.parametrize(("quantity", "price"), [(D("0"), D("100")), (D("1"), D("0"))])
def test_a_fill_without_quantity_or_price_is_refused(quantity: Decimal, price: Decimal) -> None:
    with pytest.raises(InvalidFill):
        flat().apply_fill(BUY, quantity, price, D("0"))


def test_the_view_carries_the_signed_quantity_and_pnl_after_fees() -> None:
    position = flat()
    position.apply_fill(SELL, D("1.5"), D("100"), D("0.15"), now=LATER)

    view = position.to_view()

    assert view.quantity == D("-1.5")
    assert view.average_entry == D("100")
    assert view.fees == D("0.15")
    assert view.realised_pnl == D("-0.15")
    assert (view.version, view.updated_at) == (1, LATER)
    assert (view.account, view.strategy, view.venue, view.symbol) == (
        ACCOUNT,
        STRATEGY,
        VENUE,
        SYMBOL,
    )


# --- properties -----------------------------------------------------------------------------

quantities = st.integers(1, 100_000).map(lambda n: D(n) / 1000)  # 0.001 .. 100
prices = st.integers(1, 10_000_000).map(lambda n: D(n) / 100)  # 0.01 .. 100,000
fees = st.integers(0, 100_000).map(lambda n: D(n) / 10_000)  # 0 .. 10
sides = st.sampled_from([BUY, SELL])
fills = st.tuples(sides, quantities, prices, fees)


def apply_all(position: Position, steps: list[tuple[Side, Decimal, Decimal, Decimal]]) -> Decimal:
    return sum((position.apply_fill(*step) for step in steps), D(0))


@given(sides, quantities, prices, fees, fees)
def test_opening_and_closing_at_one_price_realises_exactly_minus_the_fees(
    side: Side, quantity: Decimal, price: Decimal, entry_fee: Decimal, exit_fee: Decimal
) -> None:
    position = flat()
    position.apply_fill(side, quantity, price, entry_fee)
    realised = position.apply_fill(side.opposite, quantity, price, exit_fee)
    assert realised == -(entry_fee + exit_fee)
    assert position.realised_pnl == -(entry_fee + exit_fee)
    assert position.is_flat


@given(sides, prices, st.lists(st.tuples(quantities, fees), min_size=1, max_size=6), st.data())
def test_any_lots_in_and_out_at_one_price_realise_minus_the_fees(
    side: Side, price: Decimal, entries: list[tuple[Decimal, Decimal]], data: st.DataObject
) -> None:
    position = flat()
    for quantity, fee in entries:
        position.apply_fill(side, quantity, price, fee)
    total_fees = sum((fee for _, fee in entries), D(0))
    # Close in random slices, the last one taking whatever is left.
    while not position.is_flat:
        held = abs(position.quantity)
        quantity = min(held, data.draw(quantities))
        fee = data.draw(fees)
        total_fees += fee
        position.apply_fill(side.opposite, quantity, price, fee)
    assert abs(position.realised_pnl + total_fees) <= TOLERANCE
    assert position.fees == total_fees


@given(st.lists(fills, min_size=1, max_size=12), prices, fees)
def test_a_round_trip_realises_sells_minus_buys_minus_fees(
    steps: list[tuple[Side, Decimal, Decimal, Decimal]], exit_price: Decimal, exit_fee: Decimal
) -> None:
    position = flat()
    realised = apply_all(position, steps)
    if not position.is_flat:
        side = SELL if position.quantity > 0 else BUY
        closing = (side, abs(position.quantity), exit_price, exit_fee)
        realised += position.apply_fill(*closing)
        steps = [*steps, closing]

    cash = sum((q * p * (1 if s is SELL else -1) for s, q, p, _ in steps), D(0))
    all_fees = sum((f for *_, f in steps), D(0))
    assert position.is_flat
    assert abs(realised - (cash - all_fees)) <= TOLERANCE
    assert abs(realised - position.realised_pnl) <= TOLERANCE
    assert position.fees == all_fees


@given(st.lists(fills, max_size=15))
def test_quantity_is_always_the_signed_sum_of_fills(
    steps: list[tuple[Side, Decimal, Decimal, Decimal]],
) -> None:
    position = flat()
    signed = D(0)
    for side, quantity, price, fee in steps:
        position.apply_fill(side, quantity, price, fee)
        signed += side.sign * quantity
        assert position.quantity == signed
        assert position.is_flat == (position.average_entry is None)
        assert position.open_entry_fees >= 0
    assert position.version == len(steps)


@given(st.lists(fills, max_size=15))
def test_the_account_realises_what_the_trades_realised_less_the_fees_still_carried(
    steps: list[tuple[Side, Decimal, Decimal, Decimal]],
) -> None:
    position = flat()
    trades = apply_all(position, steps)
    assert abs(position.realised_pnl - (trades - position.open_entry_fees)) <= TOLERANCE


@given(sides, quantities, prices, fees, st.integers(1, 99), prices, fees)
def test_a_partial_close_never_moves_the_average_entry(
    side: Side,
    quantity: Decimal,
    entry: Decimal,
    entry_fee: Decimal,
    percent_closed: int,
    exit_price: Decimal,
    exit_fee: Decimal,
) -> None:
    position = flat()
    position.apply_fill(side, quantity, entry, entry_fee)
    closed = quantity * percent_closed / 100

    realised = position.apply_fill(side.opposite, closed, exit_price, exit_fee)

    assert position.average_entry == entry
    direction = side.sign
    released = entry_fee * closed / quantity
    assert realised == (exit_price - entry) * closed * direction - exit_fee - released


@given(sides, quantities, prices, fees, quantities, prices, fees)
def test_a_reversal_equals_a_full_close_then_a_fresh_entry(
    side: Side,
    held: Decimal,
    entry: Decimal,
    entry_fee: Decimal,
    beyond: Decimal,
    price: Decimal,
    fee: Decimal,
) -> None:
    at_once, in_two = flat(), flat()
    for position in (at_once, in_two):
        position.apply_fill(side, held, entry, entry_fee)
    total = held + beyond
    closing_fee = fee * held / total

    realised_at_once = at_once.apply_fill(side.opposite, total, price, fee)
    realised_in_two = in_two.apply_fill(side.opposite, held, price, closing_fee)
    in_two.apply_fill(side.opposite, beyond, price, fee - closing_fee)

    assert realised_at_once == realised_in_two
    assert at_once.quantity == in_two.quantity == side.opposite.sign * beyond
    assert at_once.average_entry == in_two.average_entry == price
    assert at_once.open_entry_fees == in_two.open_entry_fees
