from decimal import Decimal

import pytest
from risk_factories import ACCOUNT, SYMBOL, VENUE, exposure, order, position

from ordo.contracts.enums import Side
from ordo.risk.domain.exposure import (
    Exposure,
    ExposureError,
    PositionKey,
    reduces_exposure,
)


def test_a_newer_position_view_replaces_the_held_one() -> None:
    held = exposure(position("1", version=1))

    assert held.apply_position(position("3", version=2))

    assert held.net_position(VENUE, SYMBOL) == Decimal(3)


def test_an_older_position_view_is_ignored() -> None:
    held = exposure(position("3", version=5))

    assert not held.apply_position(position("1", version=4))

    assert held.net_position(VENUE, SYMBOL) == Decimal(3)


def test_a_flat_position_is_remembered_so_a_late_view_cannot_revive_it() -> None:
    held = exposure(position("2", version=1), position("0", version=2))

    held.apply_position(position("2", version=1))

    assert held.net_position(VENUE, SYMBOL) == 0
    assert held.open_positions() == frozenset()


def test_the_net_position_sums_the_strategies_of_the_account() -> None:
    held = exposure(
        position("5", strategy="trend"),
        position("-2", strategy="meanrev"),
        position("7", strategy="trend", symbol="ETH/USDT"),
    )

    assert held.net_position(VENUE, SYMBOL) == Decimal(3)


def test_the_same_symbol_on_another_venue_is_a_different_position() -> None:
    held = exposure(position("5"), position("4", venue="other"))

    assert held.net_position(VENUE, SYMBOL) == Decimal(5)
    assert held.net_position("other", SYMBOL) == Decimal(4)


def test_a_position_of_another_account_is_refused() -> None:
    with pytest.raises(ExposureError, match="belongs to account 'acc-2'"):
        exposure().apply_position(position("1", account="acc-2"))


def test_an_order_of_another_account_cannot_be_reserved() -> None:
    with pytest.raises(ExposureError, match="belongs to account 'acc-2'"):
        exposure().reserve(order(account="acc-2"))


def test_an_order_cannot_be_reserved_twice() -> None:
    spec = order()
    held = exposure(reserved=(spec,))

    with pytest.raises(ExposureError, match="already reserved"):
        held.reserve(spec)


def test_the_worst_case_counts_open_orders_on_the_same_side_only() -> None:
    held = exposure(
        position("10"),
        reserved=(order("buy", "4"), order("buy", "1"), order("sell", "3")),
    )

    assert held.worst_case_position(VENUE, SYMBOL, Side.BUY) == Decimal(15)
    assert held.worst_case_position(VENUE, SYMBOL, Side.SELL) == Decimal(7)


def test_position_after_an_order_is_the_worst_case_on_its_side() -> None:
    held = exposure(position("10"), reserved=(order("buy", "4"), order("sell", "3")))

    assert held.position_after(order("buy", "2")) == Decimal(16)
    assert held.position_after(order("sell", "20")) == Decimal(-13)


def test_open_positions_count_held_positions_and_approved_entries() -> None:
    held = exposure(
        position("1", strategy="trend"),
        position("0", strategy="flat"),
        reserved=(
            order(strategy="breakout", symbol="ETH/USDT"),
            order("sell", reduce_only=True, strategy="exit-only"),
        ),
    )

    assert held.open_positions() == frozenset(
        {
            PositionKey("trend", VENUE, SYMBOL),
            PositionKey("breakout", VENUE, "ETH/USDT"),
        }
    )


def test_a_copy_changes_independently_of_the_original() -> None:
    original = exposure(position("1"))
    twin = original.copy()

    twin.reserve(order("buy", "5"))
    twin.apply_position(position("9", version=2))

    assert original.net_position(VENUE, SYMBOL) == Decimal(1)
    assert original.reservations() == ()
    assert twin.account == ACCOUNT


@pytest.mark.parametrize(
    ("before", "after", "reduces"),
    [
        ("10", "4", True),
        ("10", "0", True),
        ("-10", "-9", True),
        ("10", "10", False),
        ("10", "11", False),
        ("10", "-5", False),  # smaller, but on the other side: a new short
        ("0", "0", False),
        ("0", "1", False),
    ],
)
def test_reducing_exposure_means_closer_to_flat_without_crossing_it(
    before: str, after: str, reduces: bool
) -> None:
    assert reduces_exposure(Decimal(before), Decimal(after)) is reduces


def test_a_new_exposure_holds_nothing() -> None:
    held = Exposure(ACCOUNT)

    assert held.positions() == {}
    assert held.net_position(VENUE, SYMBOL) == 0
    assert held.reservations() == ()


def test_reduce_only_exits_count_only_as_far_as_flat() -> None:
    # A take-profit and a stop-loss for the same position: only one of them can fill.
    take_profit = order("sell", "10", reduce_only=True)
    stop_loss = order("sell", "10", reduce_only=True)
    held = exposure(position("10"), reserved=(take_profit, stop_loss))

    assert held.worst_case_position(VENUE, SYMBOL, Side.SELL) == 0


def test_reduce_only_orders_cannot_move_a_position_on_their_own_side() -> None:
    held = exposure(position("-4"), reserved=(order("sell", "3", reduce_only=True),))

    assert held.worst_case_position(VENUE, SYMBOL, Side.SELL) == Decimal(-4)


def test_a_reduce_only_exit_lets_a_plain_order_on_its_side_go_further() -> None:
    # Exit to flat first, then the plain sell opens a short: both can fill.
    held = exposure(
        position("10"),
        reserved=(order("sell", "10", reduce_only=True), order("sell", "5")),
    )

    assert held.worst_case_position(VENUE, SYMBOL, Side.SELL) == Decimal(-5)
