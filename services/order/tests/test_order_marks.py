"""Marks and unrealised P&L: what a close at the mark would realise; totals that add up."""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st
from order_domain_builders import LATER, NOW

from ordo.contracts.enums import Side
from ordo.order.domain import Position
from ordo.order.domain.marks import Mark, marked, totals, unrealised_pnl

fills = st.lists(
    st.tuples(st.sampled_from(list(Side)), st.integers(1, 50), st.integers(50, 150)),
    min_size=1,
    max_size=12,
)


@given(fills, st.integers(50, 150))
def test_unrealised_pnl_is_what_closing_at_the_mark_without_fees_would_realise(
    trades: list[tuple[Side, int, int]], mark: int
) -> None:
    position = Position.flat("a", "s", "paper", "BTC/USDT", NOW)
    for side, quantity, price in trades:
        position.apply_fill(side, Decimal(quantity), Decimal(price), Decimal("0.1"), NOW)
    before = position.realised_pnl
    unrealised = unrealised_pnl(position.quantity, position.average_entry, Decimal(mark))
    if not position.is_flat:
        closing = Side.SELL if position.quantity > 0 else Side.BUY
        position.apply_fill(closing, abs(position.quantity), Decimal(mark), Decimal(0), LATER)
    # Exact up to the last of Decimal's 28 digits, where a running average entry rounds.
    assert abs(position.realised_pnl - before - unrealised) < Decimal("1e-20")


def test_a_short_loses_as_its_mark_rises() -> None:
    assert unrealised_pnl(Decimal(-2), Decimal(100), Decimal(110)) == Decimal(-20)


def test_an_older_mark_is_not_newer() -> None:
    newer = Mark("paper", "BTC/USDT", Decimal(1), LATER)
    older = Mark("paper", "BTC/USDT", Decimal(2), NOW)
    assert newer.is_newer_than(older) and newer.is_newer_than(None)
    assert not older.is_newer_than(newer)


def _view(strategy: str, symbol: str, quantity: str, realised: str, fees: str) -> Position:
    position = Position.flat("acct", strategy, "paper", symbol, NOW)
    position.quantity = Decimal(quantity)
    position.average_entry = Decimal(100) if Decimal(quantity) else None
    position.realised_pnl, position.fees = Decimal(realised), Decimal(fees)
    return position


def test_totals_per_strategy_add_up_to_the_account_and_count_unmarked_positions() -> None:
    marks = {("paper", "BTC/USDT"): Mark("paper", "BTC/USDT", Decimal(110), NOW)}
    views = [
        marked(p.to_view(), marks)
        for p in (
            _view("trend", "BTC/USDT", "2", "-3", "3"),  # +20 at the mark
            _view("trend", "ETH/USDT", "1", "-1", "1"),  # no mark
            _view("grid", "BTC/USDT", "-1", "5", "2"),  # -10 at the mark
        )
    ]

    account, *strategies = totals(views)

    assert (account.account, account.strategy) == ("acct", None)
    assert (account.realised_pnl, account.unrealised_pnl, account.fees) == (
        Decimal(1),
        Decimal(10),
        Decimal(6),
    )
    assert account.unmarked_positions == 1
    assert [s.strategy for s in strategies] == ["grid", "trend"]
    assert sum(s.unrealised_pnl for s in strategies) == account.unrealised_pnl
    assert sum(s.realised_pnl for s in strategies) == account.realised_pnl
