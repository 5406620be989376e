"""Marks and the P&L they give: unrealised P&L per position, totals per account and strategy.

A mark is the newest quote's last price for one venue + symbol (market.quote.v1). Newest means
quoted latest: quotes may arrive out of order, and an older one never replaces a newer mark.
A position without a mark has no unrealised P&L (None), never one from a made-up price; totals
count such positions instead of guessing them.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from ordo.contracts.orders import PositionView
from ordo.contracts.queries import PnlTotals

ZERO = Decimal(0)


@dataclass(frozen=True)
class Mark:
    venue: str
    symbol: str
    price: Decimal
    quoted_at: datetime

    def is_newer_than(self, other: "Mark | None") -> bool:
        return other is None or self.quoted_at > other.quoted_at


MarkBook = Mapping[tuple[str, str], Mark]
"""(venue, symbol) → its newest mark"""


def unrealised_pnl(quantity: Decimal, average_entry: Decimal | None, mark: Decimal) -> Decimal:
    """(mark - average entry) x signed quantity: what closing at the mark would add, before fees."""
    if quantity == ZERO or average_entry is None:
        return ZERO
    return (mark - average_entry) * quantity


def marked(position: PositionView, marks: MarkBook) -> PositionView:
    """The position's view with its mark and unrealised P&L, when its market has a mark."""
    mark = marks.get((position.venue, position.symbol))
    if mark is None:
        return position
    return position.model_copy(
        update={
            "mark_price": mark.price,
            "marked_at": mark.quoted_at,
            "unrealised_pnl": unrealised_pnl(position.quantity, position.average_entry, mark.price),
        }
    )


def totals(positions: Iterable[PositionView]) -> tuple[PnlTotals, ...]:
    """P&L per account, then per account + strategy, over already marked positions."""
    by_account: dict[str, list[PositionView]] = {}
    by_strategy: dict[tuple[str, str], list[PositionView]] = {}
    for position in positions:
        by_account.setdefault(position.account, []).append(position)
        by_strategy.setdefault((position.account, position.strategy), []).append(position)
    account_totals = [_total(group, account, None) for account, group in by_account.items()]
    strategy_totals = [_total(group, *key) for key, group in by_strategy.items()]
    return tuple(
        sorted(account_totals, key=lambda t: t.account)
        + sorted(strategy_totals, key=lambda t: (t.account, t.strategy or ""))
    )


def _total(positions: list[PositionView], account: str, strategy: str | None) -> PnlTotals:
    unmarked = [p for p in positions if p.quantity != ZERO and p.unrealised_pnl is None]
    return PnlTotals(
        account=account,
        strategy=strategy,
        realised_pnl=sum((p.realised_pnl for p in positions), ZERO),
        unrealised_pnl=sum((p.unrealised_pnl or ZERO for p in positions), ZERO),
        fees=sum((p.fees for p in positions), ZERO),
        unmarked_positions=len(unmarked),
    )
