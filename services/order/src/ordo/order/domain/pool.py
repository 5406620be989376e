"""The execution pool: at most ``max_open_groups`` groups hold a slot; the rest wait in a queue.

When a slot frees, the waiting group released first is the one of the highest tier (1 first):

1. continuation: the account already has a live group in the same symbol and direction, so the
   entry continues exposure the desk holds rather than opening a new market;
2. deepest loss: the symbol's mark has moved against the entry since its signal (a long waiting
   at 100 with the mark at 95 is 5 % in loss); the deepest loss goes first. Without a mark for
   the symbol there is nothing to compare, and the entry falls to the tiers below;
3. replacement: the entry is in the symbol of the group that closed most recently, so it takes
   over the slot that group gave up;
4. first in, first out.

Within a tier the earlier entry goes first (after the deeper loss in tier 2).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from ordo.contracts.enums import Side

ZERO = Decimal(0)
HUNDRED = Decimal(100)

CONTINUATION, DEEPEST_LOSS, REPLACEMENT, FIFO = 1, 2, 3, 4


@dataclass(frozen=True)
class WaitingEntry:
    group_id: str
    strategy: str
    venue: str
    symbol: str
    side: Side
    reference_price: Decimal | None
    enqueued_at: datetime


@dataclass(frozen=True)
class Priority:
    tier: int
    why: str
    loss_percent: Decimal | None = None

    def sort_key(self, entry: WaitingEntry) -> tuple[int, Decimal, datetime, str]:
        deepest_first = -(self.loss_percent or ZERO) if self.tier == DEEPEST_LOSS else ZERO
        return (self.tier, deepest_first, entry.enqueued_at, entry.group_id)


def loss_percent(entry: WaitingEntry, mark: Decimal | None) -> Decimal | None:
    """How far the mark moved against the entry since its signal, in percent (> 0 is a loss)."""
    if mark is None or entry.reference_price is None:
        return None
    return (entry.reference_price - mark) * entry.side.sign * HUNDRED / entry.reference_price


def priority_of(
    entry: WaitingEntry,
    *,
    live: frozenset[tuple[str, Side]],
    marks: Mapping[tuple[str, str], Decimal],
    last_closed_symbol: str | None,
) -> Priority:
    """``live``: the (symbol, side) of the account's live groups; ``marks``: (venue, symbol) →
    mark, so that an entry is compared with its own venue's price."""
    if (entry.symbol, entry.side) in live:
        return Priority(CONTINUATION, f"continues the live {entry.side} group in {entry.symbol}")
    loss = loss_percent(entry, marks.get((entry.venue, entry.symbol)))
    if loss is not None and loss > ZERO:
        return Priority(
            DEEPEST_LOSS,
            f"{entry.symbol} is {loss:.2f}% against the entry since its signal",
            loss,
        )
    if entry.symbol == last_closed_symbol:
        return Priority(REPLACEMENT, f"replaces the group in {entry.symbol} that just closed", loss)
    why = "first in, first out"
    if loss is None:
        why += f" (no mark for {entry.symbol} to compare its loss)"
    return Priority(FIFO, why, loss)


def release_order(
    waiting: Sequence[WaitingEntry],
    *,
    live: frozenset[tuple[str, Side]],
    marks: Mapping[tuple[str, str], Decimal],
    last_closed_symbol: str | None,
) -> list[tuple[WaitingEntry, Priority]]:
    """The waiting entries of one account, the next to release first."""
    ranked = [
        (entry, priority_of(entry, live=live, marks=marks, last_closed_symbol=last_closed_symbol))
        for entry in waiting
    ]
    return sorted(ranked, key=lambda pair: pair[1].sort_key(pair[0]))
