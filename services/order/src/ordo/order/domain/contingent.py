"""A position group's exits: take-profits and the stop-loss, kept in step with what is open.

The exits are one-cancels-the-other: the take-profit(s) and the stop-loss all close the same
position, so when a fill leaves the group flat every order it still has working is cancelled.
While the group is open, :func:`plan_exits` compares the exits it should have (from its open
quantity and average entry) with the ones working, and says which to cancel and which to place.
An exit is re-placed (cancel, then a new order) when its price or quantity has to change, e.g.
the aggregate take-profit when a DCA level fill moves the average entry. Should the old one fill
before its cancel lands, the new one can only close what is left: exits are reduce-only.
"""

from dataclasses import dataclass
from decimal import Decimal

from ordo.contracts.enums import GroupOrderRole, OrderStatus, OrderType, Side
from ordo.order.domain.market import MarketRules
from ordo.order.domain.strategy import EXIT_ROLES, StrategyPlan

ZERO = Decimal(0)
ONE = Decimal(1)
HUNDRED = Decimal(100)


@dataclass(frozen=True)
class GroupLeg:
    """One order of a group, as far as its exits care."""

    order_id: str
    role: GroupOrderRole
    status: OrderStatus
    quantity: Decimal
    filled_quantity: Decimal
    average_fill_price: Decimal | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    parent_order_id: str | None = None

    @property
    def is_open(self) -> bool:
        return not self.status.is_terminal

    @property
    def remaining(self) -> Decimal:
        return max(self.quantity - self.filled_quantity, ZERO)


@dataclass(frozen=True)
class ExitOrder:
    role: GroupOrderRole
    order_type: OrderType
    quantity: Decimal
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    parent_order_id: str | None = None


@dataclass(frozen=True)
class ExitPlan:
    cancel: tuple[str, ...] = ()
    place: tuple[ExitOrder, ...] = ()
    skipped: tuple[str, ...] = ()  # exits the venue would refuse, and why

    @property
    def is_empty(self) -> bool:
        return not self.cancel and not self.place


def exit_price(
    average: Decimal, percent: Decimal, side: Side, rules: MarketRules, *, profit: bool
) -> Decimal:
    """``percent`` from ``average`` in the group's favour (profit) or against it (loss), on the
    tick toward the safe side of the closing order."""
    direction = side.sign if profit else -side.sign
    raw = average * (ONE + direction * percent / HUNDRED)
    return rules.round_price(raw, side.opposite)


def plan_exits(
    side: Side,
    open_quantity: Decimal,
    average_entry: Decimal | None,
    legs: list[GroupLeg],
    strategy: StrategyPlan,
    rules: MarketRules,
    *,
    stop_price: Decimal | None = None,
) -> ExitPlan:
    """The cancels and new exits that bring an open group's exits in step with it.

    ``stop_price`` is the entry signal's own stop (a bracket); without it the stop-loss lies the
    strategy's ``stop_loss_percent`` from the average entry.
    """
    if open_quantity <= ZERO or average_entry is None:
        return ExitPlan()
    plan = _Plan()
    covered = _per_leg_take_profits(side, open_quantity, legs, strategy, rules, plan)
    take_profit = strategy.take_profit
    if take_profit is not None and take_profit.has_aggregate:
        assert take_profit.aggregate_percent is not None  # the configuration requires it
        price = exit_price(average_entry, take_profit.aggregate_percent, side, rules, profit=True)
        _keep_in_step(
            ExitOrder(
                GroupOrderRole.TAKE_PROFIT,
                OrderType.LIMIT,
                rules.floor_quantity(open_quantity - covered),
                limit_price=price,
            ),
            legs,
            rules,
            plan,
        )
    stop = stop_price
    if stop is None and strategy.stop_loss_percent is not None:
        stop = exit_price(average_entry, strategy.stop_loss_percent, side, rules, profit=False)
    if stop is not None:
        _keep_in_step(
            ExitOrder(
                GroupOrderRole.STOP_LOSS,
                OrderType.STOP_MARKET,
                rules.floor_quantity(open_quantity),
                stop_price=stop,
            ),
            legs,
            rules,
            plan,
        )
    return ExitPlan(tuple(plan.cancel), tuple(plan.place), tuple(plan.skipped))


def oco_cancels(legs: list[GroupLeg]) -> tuple[str, ...]:
    """When a group is flat after an exit filled: every order it still has working."""
    return tuple(
        leg.order_id for leg in legs if leg.is_open and leg.status is not OrderStatus.PENDING_CANCEL
    )


def an_exit_filled(legs: list[GroupLeg]) -> bool:
    return any(leg.role in EXIT_ROLES and leg.filled_quantity > ZERO for leg in legs)


class _Plan:
    def __init__(self) -> None:
        self.cancel: list[str] = []
        self.place: list[ExitOrder] = []
        self.skipped: list[str] = []


def _per_leg_take_profits(
    side: Side,
    open_quantity: Decimal,
    legs: list[GroupLeg],
    strategy: StrategyPlan,
    rules: MarketRules,
    plan: _Plan,
) -> Decimal:
    """Place a take-profit for each finished entry that has none; return what they cover."""
    take_profit = strategy.take_profit
    working = [leg for leg in legs if leg.role is GroupOrderRole.TAKE_PROFIT_LEG and leg.is_open]
    covered = sum((leg.remaining for leg in working), ZERO)
    if take_profit is None or take_profit.per_leg_percent is None:
        return covered
    # A leg that has (or had) its own take-profit keeps it: a filled one took its profit, and a
    # denied one is not retried in a loop on every fill.
    served = {leg.parent_order_id for leg in legs if leg.role is GroupOrderRole.TAKE_PROFIT_LEG}
    for leg in legs:
        eligible = take_profit.takes_profit_per_leg_on(leg.role)
        if not eligible or leg.is_open or leg.filled_quantity <= ZERO or leg.order_id in served:
            continue
        assert leg.average_fill_price is not None  # a leg with a fill has an average price
        quantity = rules.floor_quantity(min(leg.filled_quantity, open_quantity - covered))
        price = exit_price(
            leg.average_fill_price, take_profit.per_leg_percent, side, rules, profit=True
        )
        problem = rules.violation(quantity, price)
        if problem is not None:
            plan.skipped.append(f"take-profit of leg {leg.order_id}: {problem}")
            continue
        plan.place.append(
            ExitOrder(
                GroupOrderRole.TAKE_PROFIT_LEG,
                OrderType.LIMIT,
                quantity,
                limit_price=price,
                parent_order_id=leg.order_id,
            )
        )
        covered += quantity
    return covered


def _keep_in_step(wanted: ExitOrder, legs: list[GroupLeg], rules: MarketRules, plan: _Plan) -> None:
    """Keep the one working exit of ``wanted``'s role if it matches, else re-place it."""
    working = [
        leg
        for leg in legs
        if leg.role is wanted.role and leg.is_open and leg.status is not OrderStatus.PENDING_CANCEL
    ]
    matches = [
        leg
        for leg in working
        if leg.remaining == wanted.quantity
        and leg.limit_price == wanted.limit_price
        and leg.stop_price == wanted.stop_price
    ]
    if matches:
        # Keep one that matches; any other is a superseded exit whose cancel is still due.
        plan.cancel.extend(leg.order_id for leg in working if leg is not matches[0])
        return
    plan.cancel.extend(leg.order_id for leg in working)
    if wanted.quantity == ZERO:
        return  # nothing left for this exit to close (per-leg take-profits cover it all)
    problem = rules.violation(wanted.quantity, wanted.limit_price or wanted.stop_price)
    if problem is not None:
        plan.skipped.append(f"{wanted.role}: {problem}")
        return
    plan.place.append(wanted)
