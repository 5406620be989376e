"""Turn a strategy's order action and market positions into a trading intent.

TradingView describes a strategy order by its side and by the market position before and after it;
Ordo wants to know what the order is *for*. One table says it.
"""

from decimal import Decimal
from enum import StrEnum

from ordo.contracts.enums import Intent, Side
from ordo.signal.domain.errors import UnmappableIntent


class MarketPosition(StrEnum):
    """A strategy's position as TradingView names it (``strategy.market_position``)."""

    LONG = "long"
    SHORT = "short"
    FLAT = "flat"


_L, _S, _F = MarketPosition.LONG, MarketPosition.SHORT, MarketPosition.FLAT

# (action, market position after the order, market position before it) -> intent.
_INTENTS: dict[tuple[Side, MarketPosition, MarketPosition], Intent] = {
    (Side.BUY, _L, _F): Intent.ENTER_LONG,
    (Side.BUY, _L, _L): Intent.ADD,
    (Side.BUY, _L, _S): Intent.REVERSE,
    (Side.BUY, _F, _S): Intent.EXIT_SHORT,
    (Side.BUY, _S, _S): Intent.REDUCE,  # the short position shrank
    (Side.SELL, _S, _F): Intent.ENTER_SHORT,
    (Side.SELL, _S, _S): Intent.ADD,
    (Side.SELL, _S, _L): Intent.REVERSE,
    (Side.SELL, _F, _L): Intent.EXIT_LONG,
    (Side.SELL, _L, _L): Intent.REDUCE,  # the long position shrank
}

# Where the position after the order tells the position before it on its own: a buy can only
# leave a position flat or short if it was short before, and a sell the mirror image.
_PREVIOUS_FROM_OUTCOME: dict[tuple[Side, MarketPosition], MarketPosition] = {
    (Side.BUY, _F): _S,
    (Side.BUY, _S): _S,
    (Side.SELL, _F): _L,
    (Side.SELL, _L): _L,
}

# Intents that open or change exposure by an amount, so the signal must say how much.
SIZED_INTENTS = frozenset(
    {Intent.ENTER_LONG, Intent.ENTER_SHORT, Intent.ADD, Intent.REDUCE, Intent.REVERSE}
)


def to_intent(
    action: Side,
    market_position: MarketPosition,
    prev_market_position: MarketPosition | None = None,
    *,
    contracts: Decimal | None = None,
    position_size: Decimal | None = None,
) -> Intent:
    """The intent of a strategy order.

    When ``prev_market_position`` is missing it is inferred: from the action and the outcome where
    that is unambiguous, otherwise from the order size (``contracts``) against the resulting
    position size. Raises :class:`UnmappableIntent` when nothing explains the combination.
    """
    previous = prev_market_position
    if previous is None:
        previous = _infer_previous(action, market_position, contracts, position_size)
    intent = _INTENTS.get((action, market_position, previous))
    if intent is None:
        raise UnmappableIntent(
            "market_position",
            f"a {action} order cannot take a {previous} position to {market_position}",
        )
    return intent


def needs_size(intent: Intent) -> bool:
    """Whether a signal with this intent must carry a size (exits close what is open)."""
    return intent in SIZED_INTENTS


def _infer_previous(
    action: Side,
    market_position: MarketPosition,
    contracts: Decimal | None,
    position_size: Decimal | None,
) -> MarketPosition:
    known = _PREVIOUS_FROM_OUTCOME.get((action, market_position))
    if known is not None:
        return known
    if contracts is None or position_size is None:
        raise UnmappableIntent(
            "prev_market_position",
            f"is needed to tell an entry from an add or a reverse when a {action} order "
            f"leaves the position {market_position} (or send contracts and position_size)",
        )
    return _previous_from_sizes(market_position, contracts, abs(position_size))


def _previous_from_sizes(
    market_position: MarketPosition, contracts: Decimal, resulting_size: Decimal
) -> MarketPosition:
    # An entry's order is the whole new position; an add's is part of it; a reverse's order also
    # closes the old opposite position, so it is larger than the new one.
    if contracts == resulting_size:
        return MarketPosition.FLAT
    if contracts < resulting_size:
        return market_position
    return MarketPosition.SHORT if market_position is MarketPosition.LONG else MarketPosition.LONG
