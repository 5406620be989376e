"""Turn an accepted signal into the orders of the thin path: market orders, netted positions.

The planner decides only what to trade, never whether it may: limits belong to the risk gate.
It always returns at least one order, or raises :class:`PlanningError` saying why nothing
sensible can be done.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from functools import partial

from ordo.contracts.enums import Intent, OrderType, Side, SizeUnit
from ordo.contracts.orders import OrderSpec
from ordo.contracts.signals import SignalAccepted, SignalRequest
from ordo.order.domain.errors import PlanningError
from ordo.order.domain.position import Position

ZERO = Decimal(0)


def _to_multiple(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    return (value / step).to_integral_value(rounding=rounding) * step


@dataclass(frozen=True)
class MarketRules:
    """A venue's precision and minimums for one symbol."""

    tick_size: Decimal
    step_size: Decimal
    min_quantity: Decimal = ZERO
    min_notional: Decimal = ZERO

    def __post_init__(self) -> None:
        if self.tick_size <= ZERO or self.step_size <= ZERO:
            raise ValueError(
                f"tick size and step size must be positive, got {self.tick_size} and "
                f"{self.step_size}"
            )
        if self.min_quantity < ZERO or self.min_notional < ZERO:
            raise ValueError(
                f"minimums cannot be negative, got quantity {self.min_quantity} and "
                f"notional {self.min_notional}"
            )

    def floor_quantity(self, quantity: Decimal) -> Decimal:
        """Down to the step: an order never trades more than it was sized for."""
        return _to_multiple(quantity, self.step_size, ROUND_FLOOR)

    def round_price(self, price: Decimal, side: Side) -> Decimal:
        """A limit price on the tick, toward the safe side: a buy never pays more than asked,
        a sell never takes less."""
        rounding = ROUND_FLOOR if side is Side.BUY else ROUND_CEILING
        return _to_multiple(price, self.tick_size, rounding)


@dataclass(frozen=True)
class _Leg:
    side: Side
    quantity: Decimal
    reduce_only: bool = False


_Planner = Callable[[SignalRequest, Decimal, MarketRules], list[_Leg]]


def plan_orders(
    signal: SignalAccepted,
    position: Position | None,
    rules: MarketRules,
    new_order_id: Callable[[], str],
) -> list[OrderSpec]:
    """The orders that carry out ``signal`` against the open ``position`` (None when flat).

    Every order is a market order priced for notional checks at the signal's reference price;
    closes are reduce-only. A reverse gives two orders, the close first.
    """
    request = signal.signal
    _check_position_is_for(request, position)
    held = position.quantity if position is not None else ZERO
    legs = _PLANNERS[request.intent](request, held, rules)
    return [_spec(request, leg, new_order_id()) for leg in legs]


# --- one planner per intent -----------------------------------------------------------------


def _enter(
    direction: Side, request: SignalRequest, held: Decimal, rules: MarketRules
) -> list[_Leg]:
    # Entering against an open opposite position would only net it down: the sender and the
    # OMS disagree about what is open, and guessing which one is right is not our call.
    if held * direction.sign < ZERO:
        raise PlanningError(
            f"{request.intent}: {_describe(held)} is open in {request.symbol}; "
            "send reverse, or exit it first"
        )
    return [_Leg(direction, _sendable(_requested_quantity(request), request, rules, "entry"))]


def _add(request: SignalRequest, held: Decimal, rules: MarketRules) -> list[_Leg]:
    _require_open(request, held)
    side = _side_of(held)
    return [_Leg(side, _sendable(_requested_quantity(request), request, rules, "addition"))]


def _reduce(request: SignalRequest, held: Decimal, rules: MarketRules) -> list[_Leg]:
    _require_open(request, held)
    if request.size is None:
        raise PlanningError("reduce needs a size; send close_all or an exit to close everything")
    return [_closing_leg(request, held, rules)]


def _exit(direction: Side, request: SignalRequest, held: Decimal, rules: MarketRules) -> list[_Leg]:
    if held * direction.sign <= ZERO:
        wanted = "long" if direction is Side.BUY else "short"
        raise PlanningError(
            f"{request.intent}: no {wanted} position is open in {request.symbol} "
            f"({_describe(held)})"
        )
    return [_closing_leg(request, held, rules)]


def _close_all(request: SignalRequest, held: Decimal, rules: MarketRules) -> list[_Leg]:
    _require_open(request, held)
    return [_closing_leg(request, held, rules)]


def _reverse(request: SignalRequest, held: Decimal, rules: MarketRules) -> list[_Leg]:
    _require_open(request, held)
    new_side = _side_of(held).opposite
    close = _Leg(new_side, _sendable(abs(held), request, rules, "close"), reduce_only=True)
    # Without a size, the new position mirrors the one it replaces.
    wanted = abs(held) if request.size is None else _requested_quantity(request)
    return [close, _Leg(new_side, _sendable(wanted, request, rules, "new position"))]


_PLANNERS: Mapping[Intent, _Planner] = {
    Intent.ENTER_LONG: partial(_enter, Side.BUY),
    Intent.ENTER_SHORT: partial(_enter, Side.SELL),
    Intent.ADD: _add,
    Intent.REDUCE: _reduce,
    Intent.EXIT_LONG: partial(_exit, Side.BUY),
    Intent.EXIT_SHORT: partial(_exit, Side.SELL),
    Intent.CLOSE_ALL: _close_all,
    Intent.REVERSE: _reverse,
}


# --- helpers --------------------------------------------------------------------------------


def _closing_leg(request: SignalRequest, held: Decimal, rules: MarketRules) -> _Leg:
    """A reduce-only order against the position: the whole of it, or the size asked, capped."""
    wanted = abs(held) if request.size is None else min(_requested_quantity(request), abs(held))
    quantity = _sendable(wanted, request, rules, "close")
    return _Leg(_side_of(held).opposite, quantity, reduce_only=True)


def _requested_quantity(request: SignalRequest) -> Decimal:
    """The signal's size in units of the base asset, before any rounding."""
    size = request.size
    if size is None:
        raise PlanningError(f"{request.intent} needs a size")
    if size.unit is SizeUnit.QUANTITY:
        return size.value
    if size.unit is SizeUnit.QUOTE:
        if request.reference_price is None:
            raise PlanningError(
                "a size in quote currency needs the signal's reference_price to become a quantity"
            )
        return size.value / request.reference_price
    raise PlanningError(f"sizing by {size.unit} is not supported yet")


def _sendable(wanted: Decimal, request: SignalRequest, rules: MarketRules, what: str) -> Decimal:
    """``wanted`` floored to the step, or PlanningError when the venue would refuse it."""
    quantity = rules.floor_quantity(wanted)
    if quantity <= ZERO or quantity < rules.min_quantity:
        raise PlanningError(
            f"the {what} of {wanted} {request.symbol} floors to {quantity} at step "
            f"{rules.step_size}, below the minimum quantity {rules.min_quantity}"
        )
    # Without a reference price the notional is unknown here; the risk gate prices it.
    price = request.reference_price
    if price is not None and quantity * price < rules.min_notional:
        raise PlanningError(
            f"the {what} of {quantity} {request.symbol} at {price} is worth {quantity * price}, "
            f"below the minimum notional {rules.min_notional}"
        )
    return quantity


def _require_open(request: SignalRequest, held: Decimal) -> None:
    if held == ZERO:
        raise PlanningError(f"{request.intent}: no position is open in {request.symbol}")


def _side_of(held: Decimal) -> Side:
    return Side.BUY if held > ZERO else Side.SELL


def _describe(held: Decimal) -> str:
    if held == ZERO:
        return "the position is flat"
    return f"a {'long' if held > ZERO else 'short'} position of {abs(held)}"


def _check_position_is_for(request: SignalRequest, position: Position | None) -> None:
    if position is None:
        return
    ours = (request.account, request.strategy, request.venue, request.symbol)
    theirs = (position.account, position.strategy, position.venue, position.symbol)
    if ours != theirs:
        raise PlanningError(f"the position {'/'.join(theirs)} is not the signal's {'/'.join(ours)}")


def _spec(request: SignalRequest, leg: _Leg, order_id: str) -> OrderSpec:
    return OrderSpec(
        order_id=order_id,
        account=request.account,
        strategy=request.strategy,
        venue=request.venue,
        symbol=request.symbol,
        side=leg.side,
        order_type=OrderType.MARKET,
        quantity=leg.quantity,
        reduce_only=leg.reduce_only,
        reference_price=request.reference_price,
    )
