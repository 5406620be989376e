"""What the domain records as it changes; handlers drain these and publish contracts.

Each event maps to exactly one outgoing message: ``OrderChanged`` → ``OrderUpdated`` (a new view
of the order), ``OrderFilled`` → a position update and ``PositionChanged``.
"""

from dataclasses import dataclass

from ordo.contracts.enums import OrderStatus, Side
from ordo.contracts.execution import Fill


@dataclass(frozen=True)
class OrderChanged:
    """The order reached a new version; publish its view."""

    order_id: str
    version: int
    status: OrderStatus


@dataclass(frozen=True)
class OrderFilled:
    """A fill the order had not seen before; apply it to the position exactly once."""

    order_id: str
    account: str
    strategy: str
    venue: str
    symbol: str
    side: Side
    fill: Fill


OrderEvent = OrderChanged | OrderFilled
