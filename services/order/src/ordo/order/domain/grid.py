"""The entries of a new position group: a market base entry and the limit levels of its DCA grid.

The group's total size is split by weight between the base entry and the levels. Each level lies
``gap_percent`` below the entry price for a long (above for a short); its price rounds to the tick
toward the safe side (a buy never pays more, a sell never takes less) and its size floors to the
step. A level that the venue would refuse (below the minimum quantity or notional) is **merged**
into the level before it, nearer the entry (the base entry for the first level), so that the group
keeps its total size instead of silently shrinking.
"""

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal, localcontext

from ordo.contracts.enums import GroupOrderRole, OrderType, Side
from ordo.order.domain.errors import PlanningError
from ordo.order.domain.market import MarketRules
from ordo.order.domain.strategy import GridPlan

ZERO = Decimal(0)
ONE = Decimal(1)
HUNDRED = Decimal(100)


@dataclass(frozen=True)
class EntryLeg:
    role: GroupOrderRole
    order_type: OrderType
    quantity: Decimal
    limit_price: Decimal | None = None


@dataclass(frozen=True)
class _Level:
    price: Decimal
    weight: Decimal


def level_price(
    entry_price: Decimal, gap_percent: Decimal, side: Side, rules: MarketRules
) -> Decimal:
    """A DCA level ``gap_percent`` away from the entry against the group's direction."""
    raw = entry_price * (ONE - side.sign * gap_percent / HUNDRED)
    return rules.round_price(raw, side)


def plan_entries(
    side: Side,
    total_quantity: Decimal,
    entry_price: Decimal | None,
    grid: GridPlan | None,
    rules: MarketRules,
) -> list[EntryLeg]:
    """The base entry (market) then the grid's levels (limit), deepest last.

    ``entry_price`` is the signal's reference price: the grid's levels lie from it, and without
    it only a single entry can be planned (its notional is then the risk gate's to value).
    """
    if grid is None:
        return [_base(total_quantity, entry_price, rules, total_quantity)]
    if entry_price is None:
        raise PlanningError("a DCA grid needs the signal's reference_price to place its levels")
    levels = [
        _Level(level_price(entry_price, level.gap_percent, side, rules), level.weight)
        for level in grid.levels
    ]
    total_weight = grid.base_weight + sum((level.weight for level in levels), ZERO)
    kept: list[EntryLeg] = []
    carried = ZERO  # what deeper levels too small to send hand to the one before them
    for level in reversed(levels):
        wanted = _share(total_quantity, level.weight, total_weight) + carried
        quantity = rules.floor_quantity(wanted)
        if level.price <= ZERO or rules.violation(quantity, level.price) is not None:
            carried = wanted
            continue
        carried = ZERO
        kept.append(EntryLeg(GroupOrderRole.DCA, OrderType.LIMIT, quantity, level.price))
    base_wanted = _share(total_quantity, grid.base_weight, total_weight) + carried
    return [_base(base_wanted, entry_price, rules, total_quantity), *reversed(kept)]


def _share(total: Decimal, weight: Decimal, total_weight: Decimal) -> Decimal:
    with localcontext() as context:
        context.rounding = ROUND_FLOOR  # the parts never add up to more than the whole
        return total * weight / total_weight


def _base(wanted: Decimal, price: Decimal | None, rules: MarketRules, total: Decimal) -> EntryLeg:
    quantity = rules.floor_quantity(wanted)
    problem = rules.violation(quantity, price)
    if problem is not None:
        raise PlanningError(f"the base entry of a group of {total} is too small to send: {problem}")
    return EntryLeg(GroupOrderRole.BASE, OrderType.MARKET, quantity)
