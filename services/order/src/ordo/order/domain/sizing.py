"""How much to trade: a signal's size, in any unit, as a quantity of the base asset.

Every entry size keeps its costs inside the budget it was given: the taker fee and the expected
slippage are paid from the amount, not on top of it. Quantities floor to the venue's step, so an
order never trades more than it was sized for.
"""

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, localcontext

from ordo.contracts.enums import Side, SizeUnit
from ordo.order.domain.errors import PlanningError
from ordo.order.domain.market import MarketRules

ZERO = Decimal(0)
ONE = Decimal(1)
HUNDRED = Decimal(100)


def entry_quantity(
    unit: SizeUnit,
    value: Decimal,
    *,
    side: Side,
    rules: MarketRules,
    price: Decimal | None,
    stop: Decimal | None = None,
    equity: Decimal | None = None,
) -> Decimal:
    """The quantity of a new entry on ``side`` sized as ``value`` in ``unit``, floored to step.

    ``price`` is the expected entry price, ``stop`` where the position would be cut (sizing by
    risk), ``equity`` the account's equity (sizing by percent of equity). A missing input that
    the unit needs raises :class:`PlanningError`: a size is never guessed.
    """
    if value <= ZERO:
        raise PlanningError(f"a size must be positive, got {value} {unit}")
    if unit is SizeUnit.QUANTITY:
        return rules.floor_quantity(value)
    if unit is SizeUnit.QUOTE:
        return _quote_quantity(value, _need(price, "a size in quote currency"), rules)
    if unit is SizeUnit.PERCENT_EQUITY:
        return _percent_of_equity_quantity(value, price, equity, rules)
    return _risk_quantity(value, side, _need(price, "sizing by risk"), _need_stop(stop), rules)


def _quote_quantity(budget: Decimal, price: Decimal, rules: MarketRules) -> Decimal:
    with localcontext() as context:
        context.rounding = ROUND_CEILING  # a unit costs at least this: never over the budget
        unit_cost = price * rules.entry_cost_factor
        context.rounding = ROUND_FLOOR
        return rules.floor_quantity(budget / unit_cost)


def _percent_of_equity_quantity(
    percent: Decimal, price: Decimal | None, equity: Decimal | None, rules: MarketRules
) -> Decimal:
    if percent > HUNDRED:
        raise PlanningError(f"a size of {percent} percent of equity is more than the equity")
    if equity is None:
        raise PlanningError(
            "sizing by percent of equity needs the account's equity: set its capital in the "
            "order service's capital.<account>"
        )
    if equity <= ZERO:
        raise PlanningError(f"the account's equity is {equity}: nothing to size a percent of")
    with localcontext() as context:
        context.rounding = ROUND_FLOOR
        budget = equity * percent / HUNDRED
    return _quote_quantity(budget, _need(price, "sizing by percent of equity"), rules)


def _risk_quantity(
    risk: Decimal, side: Side, price: Decimal, stop: Decimal, rules: MarketRules
) -> Decimal:
    """``risk`` is the quote amount lost when the stop is hit, the costs of both trades included.

    One unit bought at the price with slippage and fee, and sold at the stop with slippage and
    fee (mirrored for a short), loses ``loss_per_unit``; the quantity is the risk over that.
    """
    if (stop - price) * side.sign >= ZERO:
        wrong = "below" if side is Side.BUY else "above"
        raise PlanningError(
            f"sizing by risk needs a stop {wrong} the entry price {price}, got {stop}"
        )
    buy_price, sell_price = (price, stop) if side is Side.BUY else (stop, price)
    with localcontext() as context:
        context.rounding = ROUND_CEILING  # the loss rounds up: the risk is never exceeded
        paid = buy_price * (ONE + rules.expected_slippage) * (ONE + rules.taker_fee_rate)
        context.rounding = ROUND_FLOOR
        received = sell_price * (ONE - rules.expected_slippage) * (ONE - rules.taker_fee_rate)
        context.rounding = ROUND_CEILING
        loss_per_unit = paid - received
        context.rounding = ROUND_FLOOR
        return rules.floor_quantity(risk / loss_per_unit)


def equity_of(
    capital: Decimal | None, realised_pnl: Decimal, unrealised_pnl: Decimal
) -> Decimal | None:
    """Equity = the configured capital + realised P&L (after fees) + unrealised P&L from marks;
    unknown (None) without a configured capital."""
    if capital is None:
        return None
    return capital + realised_pnl + unrealised_pnl


def _need(price: Decimal | None, what: str) -> Decimal:
    if price is None:
        raise PlanningError(f"{what} needs the signal's reference_price to become a quantity")
    return price


def _need_stop(stop: Decimal | None) -> Decimal:
    if stop is None:
        raise PlanningError(
            "sizing by risk needs a stop: the signal's stop_price or the strategy's "
            "stop_loss_percent"
        )
    return stop
