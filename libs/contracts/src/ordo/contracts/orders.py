"""Orders and positions, as the OMS publishes them."""

from pydantic import Field, model_validator

from ordo.contracts.enums import OrderStatus, OrderType, Side, TimeInForce
from ordo.contracts.envelope import Contract, Message
from ordo.contracts.signals import Name
from ordo.contracts.types import Decimal_, Money, Price, Quantity, UtcDatetime


class OrderSpec(Contract):
    """Everything a venue needs to place one order. ``order_id`` is the client order id."""

    order_id: str = Field(min_length=1, max_length=36)
    account: Name
    strategy: Name
    venue: Name
    symbol: Name
    side: Side
    order_type: OrderType = OrderType.MARKET
    time_in_force: TimeInForce = TimeInForce.GTC
    quantity: Quantity = Field(gt=0)
    limit_price: Price | None = None
    stop_price: Price | None = None
    reduce_only: bool = False
    post_only: bool = False
    trailing_amount: Price | None = Field(
        default=None,
        description="A trailing stop's distance from the best price since placement, in price",
    )
    trailing_percent: Decimal_ | None = Field(
        default=None,
        gt=0,
        lt=100,
        description="A trailing stop's distance from the best price since placement, in percent",
    )
    reference_price: Price | None = Field(
        default=None, description="The price the OMS sized the order at (notional checks)"
    )

    @model_validator(mode="after")
    def _prices_match_type(self) -> "OrderSpec":
        needs_limit = self.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
        needs_stop = self.order_type in (OrderType.STOP_MARKET, OrderType.STOP_LIMIT)
        if needs_limit and self.limit_price is None:
            raise ValueError(f"a {self.order_type} order needs a limit_price")
        if needs_stop and self.stop_price is None:
            raise ValueError(f"a {self.order_type} order needs a stop_price")
        return self


class OrderProposed(Message):
    """The OMS asks the risk gate to approve new exposure; a list passes or fails as a whole."""

    schema_name = "OrderProposed"

    proposal_id: str
    signal_id: str
    account: Name
    orders: tuple[OrderSpec, ...] = Field(min_length=1)


class CancelOrder(Message):
    """Command from the OMS to execution. Cancels skip the risk gate."""

    schema_name = "CancelOrder"

    order_id: str = Field(min_length=1, max_length=36)
    account: Name
    venue: Name
    symbol: Name
    venue_order_id: str | None = None
    reason: str


class OrderView(Contract):
    """An order as the OMS knows it."""

    order_id: str
    signal_id: str
    account: Name
    strategy: Name
    venue: Name
    symbol: Name
    side: Side
    order_type: OrderType
    quantity: Quantity
    status: OrderStatus
    filled_quantity: Quantity
    average_fill_price: Price | None = None
    fees: Money = Field(default=0)
    venue_order_id: str | None = None
    reduce_only: bool = False
    reason: str | None = None
    version: int
    created_at: UtcDatetime
    updated_at: UtcDatetime


class OrderUpdated(Message):
    """An order changed status or filled further."""

    schema_name = "OrderUpdated"

    order: OrderView


class PositionView(Contract):
    """A netted position per account + strategy + symbol; quantity is signed (short < 0)."""

    account: Name
    strategy: Name
    venue: Name
    symbol: Name
    quantity: Decimal_
    average_entry: Price | None = None
    realised_pnl: Money = Field(description="After fees, in the quote currency")
    fees: Money
    version: int
    updated_at: UtcDatetime


class PositionChanged(Message):
    """A position moved because of a fill."""

    schema_name = "PositionChanged"

    position: PositionView
    order_id: str
    fill_id: str
