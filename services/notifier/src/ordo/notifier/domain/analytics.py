"""Trading performance from the OMS's position changes. Pure: no I/O; money is Decimal.

A trade is a round trip: from a position opening until it is flat again, or reversed through
zero. Its P&L is the change of the position's realised P&L over the trip, which the OMS keeps
after every fee it paid, entries included: so a trip's P&L is after the fees of both sides, and
the trips of a position add up to its realised P&L. Nothing of the OMS's money math is redone
here, but for one split: a fill that reverses a position pays one fee for closing the old side
and opening the new one, shared in proportion to the quantities, as the OMS shares it.
"""

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext

from ordo.contracts.reports import Performance

ZERO = Decimal(0)
# Ratios and averages are kept to 8 places: exact enough for any quote currency, and readable.
PLACES = Decimal("1e-8")
# A share of a fee is kept to the places the stores keep (``ordo.kit.store.ExactDecimal``).
FEE_PLACES = Decimal("1e-18")
# Wide enough that sums of stored amounts are exact: trips then add up to the realised P&L.
_WIDE = Context(prec=60, rounding=ROUND_HALF_EVEN)
# Crypto venues trade every day of the year: daily ratios are annualised over 365 days.
PERIODS_PER_YEAR = 365


@dataclass(frozen=True, order=True)
class PositionKey:
    account: str
    strategy: str
    venue: str
    symbol: str

    @property
    def currency(self) -> str:
        """What its P&L is in: the settlement currency of a derivative (``BTC/USDT:USDT``),
        else the quote currency (``BTC/USDT``)."""
        _, _, quote = self.symbol.partition("/")
        settle = quote.partition(":")[2]
        return settle or quote or self.symbol


@dataclass(frozen=True)
class PositionStep:
    """A position just after one of its fills, as the OMS published it."""

    key: PositionKey
    version: int
    quantity: Decimal  # signed: short < 0
    realised_pnl: Decimal  # after every fee paid so far
    fees: Decimal  # every fee paid so far
    at: datetime


@dataclass(frozen=True)
class Trade:
    key: PositionKey
    closed_at: datetime
    pnl: Decimal  # after the fees of both sides


def closed_trades(steps: Iterable[PositionStep]) -> list[Trade]:
    """The round trips the steps close, in the order they closed (steps in any order)."""
    by_position: dict[PositionKey, list[PositionStep]] = {}
    for step in steps:
        by_position.setdefault(step.key, []).append(step)
    with localcontext(_WIDE):
        trades = [
            trade
            for key in sorted(by_position)
            for trade in _round_trips(sorted(by_position[key], key=lambda s: s.version))
        ]
    return sorted(trades, key=lambda trade: trade.closed_at)


def _round_trips(steps: Sequence[PositionStep]) -> Iterator[Trade]:
    """The trips of one position, its steps in version order.

    History may start after version 1 (events older than the notifier's history): a trip whose
    opening was not seen has no known start, and is not counted. A missing version in between
    at worst merges two trips into one, whose P&L is still the sum of both.
    """
    seen_from_the_start = steps[0].version == 1
    # The realised P&L when the open trip started; None while that is unknown.
    start: Decimal | None = ZERO if seen_from_the_start else None
    held: Decimal | None = ZERO if seen_from_the_start else None  # quantity before the step
    previous: PositionStep | None = None
    for step in steps:
        if held is None:
            if step.quantity == ZERO:
                start = step.realised_pnl
        elif held != ZERO and _closes(held, step.quantity):
            # Part of a reversing fill's fee opened the new trip: it belongs to that one.
            carried = _reopening_fee(previous, step)
            if start is not None:
                # normalize(): without the padding of a fee share's 18 places (19.04, not
                # 19.040000000000000000).
                pnl = (step.realised_pnl + carried - start).normalize()
                yield Trade(step.key, step.at, pnl)
            start = step.realised_pnl + carried
        held, previous = step.quantity, step


def _closes(held: Decimal, quantity: Decimal) -> bool:
    return quantity == ZERO or (quantity > ZERO) != (held > ZERO)


def _reopening_fee(previous: PositionStep | None, step: PositionStep) -> Decimal:
    """The part of a reversing fill's fee that opened the new side, pro rata of quantities.

    Known only when the step right before is known; otherwise the whole fee stays with the trip
    the fill closed.
    """
    if step.quantity == ZERO or previous is None or previous.version != step.version - 1:
        return ZERO
    fee = step.fees - previous.fees
    filled = abs(step.quantity - previous.quantity)
    # The OMS's own sum: the closing part first, the rest opened the new side.
    closing = (fee * abs(previous.quantity) / filled).quantize(FEE_PLACES)
    return fee - closing


def performance(pnls: Sequence[Decimal]) -> Performance:
    """Statistics of trades, given their P&L in the order they closed."""
    wins = [pnl for pnl in pnls if pnl > ZERO]
    losses = [pnl for pnl in pnls if pnl < ZERO]
    gross_profit, gross_loss = sum(wins, ZERO), -sum(losses, ZERO)
    return Performance(
        trades=len(pnls),
        wins=len(wins),
        losses=len(losses),
        realised_pnl=sum(pnls, ZERO),
        win_rate=_ratio(Decimal(len(wins)), Decimal(len(pnls))),
        profit_factor=_ratio(gross_profit, gross_loss),
        average_win=_ratio(gross_profit, Decimal(len(wins))),
        average_loss=_ratio(-gross_loss, Decimal(len(losses))),
        largest_win=max(wins, default=None),
        largest_loss=min(losses, default=None),
        max_drawdown=max_drawdown(pnls),
    )


def max_drawdown(pnls: Iterable[Decimal]) -> Decimal:
    """The deepest fall of the cumulative P&L below its running peak (which starts at zero)."""
    cumulative = peak = deepest = ZERO
    for pnl in pnls:
        cumulative += pnl
        peak = max(peak, cumulative)
        deepest = max(deepest, peak - cumulative)
    return deepest


# Sharpe and Sortino are computed in Decimal, like the P&L they come from: the inputs are exact,
# Decimal's square root is correctly rounded (28 digits), and no float enters the money path.
#
# A daily return is the day's P&L over the capital, taken as constant over the window. Both
# ratios are then the same whatever that capital is (it cancels out), so they are computed on
# the daily P&L and need no capital configured. The risk-free rate and the target are zero.


def sharpe_ratio(daily_pnl: Sequence[Decimal]) -> Decimal | None:
    """Mean over sample standard deviation, annualised; None under two days or no variation."""
    days = len(daily_pnl)
    if days < 2:
        return None
    mean = sum(daily_pnl, ZERO) / days
    variance = sum(((pnl - mean) ** 2 for pnl in daily_pnl), ZERO) / (days - 1)
    if variance == ZERO:
        return None
    return _rounded(mean / variance.sqrt() * _annualiser())


def sortino_ratio(daily_pnl: Sequence[Decimal]) -> Decimal | None:
    """Mean over downside deviation (below zero), annualised; None under two days or no loss."""
    days = len(daily_pnl)
    if days < 2:
        return None
    mean = sum(daily_pnl, ZERO) / days
    downside = sum((min(pnl, ZERO) ** 2 for pnl in daily_pnl), ZERO) / days
    if downside == ZERO:
        return None
    return _rounded(mean / downside.sqrt() * _annualiser())


def _annualiser() -> Decimal:
    return Decimal(PERIODS_PER_YEAR).sqrt()


def _ratio(numerator: Decimal, denominator: Decimal) -> Decimal | None:
    return None if denominator == ZERO else _rounded(numerator / denominator)


def _rounded(value: Decimal) -> Decimal:
    return value.quantize(PLACES, context=_WIDE)
