"""The order service's pure domain: the order FSM, orders, positions and order planning.

No I/O here: time comes in as ``now``, ids from an injected factory, and every decision is a
return value or a specific exception.
"""

from ordo.order.domain.errors import (
    InvalidFill,
    InvalidTransition,
    OrderDomainError,
    PlanningError,
    ReportMismatch,
)
from ordo.order.domain.events import OrderChanged, OrderEvent, OrderFilled
from ordo.order.domain.fsm import TRANSITIONS, can_transition, transition
from ordo.order.domain.order import AppliedReport, Order
from ordo.order.domain.planning import MarketRules, plan_orders
from ordo.order.domain.position import Position

__all__ = [
    "TRANSITIONS",
    "AppliedReport",
    "InvalidFill",
    "InvalidTransition",
    "MarketRules",
    "Order",
    "OrderChanged",
    "OrderDomainError",
    "OrderEvent",
    "OrderFilled",
    "PlanningError",
    "Position",
    "ReportMismatch",
    "can_transition",
    "plan_orders",
    "transition",
]
