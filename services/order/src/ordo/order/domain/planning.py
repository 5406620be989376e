"""Turn an accepted signal into the orders of the thin path: netted positions, one order per leg.

Each order is of the type, time in force and flags the signal's ``order`` block asks for (a
market order, GTC, without one); its prices are rounded to the tick toward the safe side.

The planner decides only what to trade, never whether it may: limits belong to the risk gate.
It always returns at least one order, or raises :class:`PlanningError` saying why nothing
sensible can be done.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal, localcontext
from functools import partial

from ordo.contracts.enums import Intent, Side, SizeUnit
from ordo.contracts.orders import OrderSpec
from ordo.contracts.signals import OrderRequest, SignalAccepted, SignalRequest
from ordo.order.domain.errors import PlanningError
from ordo.order.domain.market import MarketRules
from ordo.order.domain.order import Order
from ordo.order.domain.position import Position
from ordo.order.domain.sizing import entry_quantity

ZERO = Decimal(0)
ONE = Decimal(1)


@dataclass(frozen=True)
class _Leg:
    side: Side
    quantity: Decimal
    reduce_only: bool = False


@dataclass(frozen=True)
class _Holding:
    """The signed position, and the part of it that working reduce-only orders will close."""

    quantity: Decimal
    closing: Decimal = ZERO
    closing_orders: tuple[str, ...] = ()

    @property
    def open_to_close(self) -> Decimal:
        """What no working exit is closing yet (never negative)."""
        return max(abs(self.quantity) - self.closing, ZERO)


_Planner = Callable[[SignalRequest, _Holding, MarketRules, Decimal | None], list[_Leg]]
"""(signal, holding, market rules, the account's equity if known) → the orders' legs"""


def plan_orders(
    signal: SignalAccepted,
    position: Position | None,
    rules: MarketRules,
    new_order_id: Callable[[], str],
    *,
    working: Sequence[Order] = (),
    equity: Decimal | None = None,
) -> list[OrderSpec]:
    """The orders that carry out ``signal`` against the open ``position`` (None when flat).

    ``equity`` is the account's equity, which a size in percent of equity needs.
    ``working`` are the position's orders that may still fill. Reduce-only ones on the closing
    side are an exit already on its way: a close covers only what they leave open, so that two
    exit signals do not sell the same position twice.

    Every order is of the type the signal's ``order`` block asks for (market without one),
    priced for sizing and notional checks at the signal's reference price, or without one at
    the order's own limit or stop price; closes are reduce-only. A reverse gives two orders of
    that type, the close first.
    """
    request = _priced(signal.signal)
    _check_position_is_for(request, position)
    held = position.quantity if position is not None else ZERO
    legs = _PLANNERS[request.intent](request, _holding(held, working), rules, equity)
    return [_spec(request, leg, rules, new_order_id()) for leg in legs]


def _priced(request: SignalRequest) -> SignalRequest:
    """``request`` with a reference price: its own, or the price its order names (if any)."""
    order = request.order
    if request.reference_price is not None or order is None:
        return request
    named = order.limit_price or order.stop_price
    return request.model_copy(update={"reference_price": named}) if named else request


def _holding(held: Decimal, working: Sequence[Order]) -> _Holding:
    if held == ZERO:
        return _Holding(held)
    closing_side = _side_of(held).opposite
    exits = [
        order
        for order in working
        if order.is_open and order.reduce_only and order.side is closing_side
    ]
    return _Holding(
        held,
        closing=sum((order.remaining_quantity for order in exits), ZERO),
        closing_orders=tuple(order.order_id for order in exits),
    )


# --- one planner per intent -----------------------------------------------------------------


def _enter(
    direction: Side,
    request: SignalRequest,
    holding: _Holding,
    rules: MarketRules,
    equity: Decimal | None,
) -> list[_Leg]:
    held = holding.quantity
    # Entering against an open opposite position would only net it down: the sender and the
    # OMS disagree about what is open, and guessing which one is right is not our call.
    if held * direction.sign < ZERO:
        raise PlanningError(
            f"{request.intent}: {_describe(held)} is open in {request.symbol}; "
            "send reverse, or exit it first"
        )
    wanted = _entry_quantity(request, direction, rules, equity)
    return [_Leg(direction, _sendable(wanted, request, rules, "entry"))]


def _add(
    request: SignalRequest, holding: _Holding, rules: MarketRules, equity: Decimal | None
) -> list[_Leg]:
    _require_open(request, holding.quantity)
    side = _side_of(holding.quantity)
    wanted = _entry_quantity(request, side, rules, equity)
    return [_Leg(side, _sendable(wanted, request, rules, "addition"))]


def _reduce(
    request: SignalRequest, holding: _Holding, rules: MarketRules, _equity: Decimal | None
) -> list[_Leg]:
    _require_open(request, holding.quantity)
    if request.size is None:
        raise PlanningError("reduce needs a size; send close_all or an exit to close everything")
    return [_closing_leg(request, holding, rules)]


def _exit(
    direction: Side,
    request: SignalRequest,
    holding: _Holding,
    rules: MarketRules,
    _equity: Decimal | None,
) -> list[_Leg]:
    held = holding.quantity
    if held * direction.sign <= ZERO:
        wanted = "long" if direction is Side.BUY else "short"
        raise PlanningError(
            f"{request.intent}: no {wanted} position is open in {request.symbol} "
            f"({_describe(held)})"
        )
    return [_closing_leg(request, holding, rules)]


def _close_all(
    request: SignalRequest, holding: _Holding, rules: MarketRules, _equity: Decimal | None
) -> list[_Leg]:
    _require_open(request, holding.quantity)
    return [_closing_leg(request, holding, rules)]


def _reverse(
    request: SignalRequest, holding: _Holding, rules: MarketRules, equity: Decimal | None
) -> list[_Leg]:
    held = holding.quantity
    _require_open(request, held)
    new_side = _side_of(held).opposite
    legs = []
    # An exit already working closes its part; the reverse closes only the rest.
    if holding.open_to_close > ZERO:
        closing = _sendable(holding.open_to_close, request, rules, "close")
        legs.append(_Leg(new_side, closing, reduce_only=True))
    # Without a size, the new position mirrors the one it replaces.
    wanted = (
        abs(held) if request.size is None else _entry_quantity(request, new_side, rules, equity)
    )
    return [*legs, _Leg(new_side, _sendable(wanted, request, rules, "new position"))]


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


def _closing_leg(request: SignalRequest, holding: _Holding, rules: MarketRules) -> _Leg:
    """A reduce-only order against the position: what no working exit closes yet, or the size
    asked, capped at that."""
    closable = holding.open_to_close
    if closable == ZERO:
        raise PlanningError(
            f"{request.intent}: {_describe(holding.quantity)} in {request.symbol} is already "
            f"closing {holding.closing} by orders {', '.join(holding.closing_orders)}; "
            "nothing is left to close"
        )
    wanted = closable if request.size is None else min(_requested_quantity(request), closable)
    quantity = _sendable(wanted, request, rules, "close")
    return _Leg(_side_of(holding.quantity).opposite, quantity, reduce_only=True)


def _entry_quantity(
    request: SignalRequest, side: Side, rules: MarketRules, equity: Decimal | None
) -> Decimal:
    """The size of new exposure, in any unit; a budget also pays the costs (see sizing)."""
    size = request.size
    if size is None:
        raise PlanningError(f"{request.intent} needs a size")
    return entry_quantity(
        size.unit,
        size.value,
        side=side,
        rules=rules,
        price=request.reference_price,
        stop=request.stop_price,
        equity=equity,
    )


def _requested_quantity(request: SignalRequest) -> Decimal:
    """The size of a close, in units of the base asset (a quote size at the reference price)."""
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
        with localcontext() as context:
            context.rounding = ROUND_FLOOR
            return size.value / request.reference_price
    raise PlanningError(f"a close is sized by quantity or quote amount, not by {size.unit}")


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


def _spec(request: SignalRequest, leg: _Leg, rules: MarketRules, order_id: str) -> OrderSpec:
    order = request.order or OrderRequest()
    return OrderSpec(
        order_id=order_id,
        account=request.account,
        strategy=request.strategy,
        venue=request.venue,
        symbol=request.symbol,
        side=leg.side,
        order_type=order.order_type,
        time_in_force=order.time_in_force,
        quantity=leg.quantity,
        limit_price=_on_tick(order.limit_price, leg.side, rules),
        stop_price=_on_tick(order.stop_price, leg.side, rules),
        trailing_amount=order.trailing_amount,
        trailing_percent=order.trailing_percent,
        expire_at=order.expire_at,
        reduce_only=leg.reduce_only or order.reduce_only,
        post_only=order.post_only,
        reference_price=request.reference_price,
    )


def _on_tick(price: Decimal | None, side: Side, rules: MarketRules) -> Decimal | None:
    """A limit price never worse than asked; a stop triggers no later than asked (a buy's
    stop rounds down, a sell's up). A price below one tick is refused, not made zero."""
    if price is None:
        return None
    rounded = rules.round_price(price, side)
    if rounded <= ZERO:
        raise PlanningError(
            f"the price {price} rounds to {rounded} at tick {rules.tick_size}: no valid price"
        )
    return rounded
