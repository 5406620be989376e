"""Request/reply queries answered by the OMS (reconciler and operator CLI)."""

from pydantic import Field

from ordo.contracts.enums import OrderStatus
from ordo.contracts.envelope import Message
from ordo.contracts.orders import OrderView, PositionView
from ordo.contracts.signals import Name


class QueryOrders(Message):
    schema_name = "QueryOrders"

    account: Name | None = None
    order_id: str | None = None
    signal_id: str | None = None
    status: OrderStatus | None = None
    limit: int = Field(default=100, ge=1, le=1000)


class OrdersView(Message):
    schema_name = "OrdersView"

    orders: tuple[OrderView, ...]


class QueryPositions(Message):
    schema_name = "QueryPositions"

    account: Name | None = None
    venue: Name | None = None
    include_flat: bool = False


class PositionsView(Message):
    schema_name = "PositionsView"

    positions: tuple[PositionView, ...]
