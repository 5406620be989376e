"""The paper venue's trading costs, as pure functions: slippage, book levels, market impact.

Slippage worsens the price a taker order gets, more for larger orders (see ``SlippageModel``);
market impact moves the venue's price for the orders that follow, and fades by half every
half-life. Sizes are measured as notional against the market's ``depth``.
"""

from collections.abc import Iterator
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from ordo.contracts.enums import Side
from ordo.execution.venues.paper_config import MarketImpact, Slippage, SlippageModel
from ordo.execution.venues.paper_state import PriceMove

ZERO = Decimal(0)


def slippage_fraction(slippage: Slippage, notional: Decimal, depth: Decimal) -> Decimal:
    """How much worse than the venue's price a taker trade of ``notional`` is filled."""
    size = notional / depth
    if slippage.model is SlippageModel.FIXED:
        return slippage.rate
    if slippage.model is SlippageModel.LINEAR:
        return slippage.rate * size
    return slippage.rate * size.sqrt()


def taker_price(price: Decimal, side: Side, fraction: Decimal, tick: Decimal) -> Decimal:
    """``price`` worsened by ``fraction`` for the taker, on the tick, rounded against the taker."""
    raw = price * (1 + side.sign * fraction)
    rounding = ROUND_CEILING if side is Side.BUY else ROUND_FLOOR
    ticks = (raw / tick).to_integral_value(rounding=rounding)
    return max(ticks, Decimal(1)) * tick


def book_levels(quantity: Decimal, level_quantity: Decimal | None) -> Iterator[Decimal]:
    """The quantity a taker order takes from each level of the book, best level first."""
    if level_quantity is None:
        yield quantity
        return
    left = quantity
    while left > 0:
        taken = min(left, level_quantity)
        yield taken
        left -= taken


def faded(move: PriceMove | None, impact: MarketImpact, at: datetime) -> Decimal:
    """What is left at ``at`` of a price move: half of it after every half-life."""
    if move is None or move.fraction == 0:
        return ZERO
    elapsed = Decimal(max((at - move.at).total_seconds(), 0.0))
    return move.fraction * Decimal("0.5") ** (elapsed / impact.half_life_seconds)


def moved_by_trade(
    move: PriceMove | None,
    impact: MarketImpact,
    side: Side,
    notional: Decimal,
    depth: Decimal,
    at: datetime,
) -> PriceMove | None:
    """The price move after a taker trade: buys push the price up, sells push it down."""
    if impact.rate == 0:
        return move
    fraction = faded(move, impact, at) + side.sign * impact.rate * notional / depth
    return PriceMove(fraction=fraction, at=at)
