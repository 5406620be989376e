"""Orders and positions, as the OMS publishes them."""

from decimal import Decimal

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
    expire_at: UtcDatetime | None = Field(
        default=None,
        description="When a GTD order expires (a DAY order: its venue's session close)",
    )

    @model_validator(mode="after")
    def _prices_match_type(self) -> "OrderSpec":
        needs_limit = self.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
        needs_stop = self.order_type in (OrderType.STOP_MARKET, OrderType.STOP_LIMIT)
        if needs_limit and self.limit_price is None:
            raise ValueError(f"a {self.order_type} order needs a limit_price")
        if needs_stop and self.stop_price is None:
            raise ValueError(f"a {self.order_type} order needs a stop_price")
        if self.expire_at is not None and self.time_in_force not in _EXPIRING:
            raise ValueError(
                f"expire_at is for GTD and DAY orders; a {self.time_in_force.upper()} order "
                "never expires at a time"
            )
        return self


_EXPIRING = (TimeInForce.GTD, TimeInForce.DAY)


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
    time_in_force: TimeInForce | None = None
    limit_price: Price | None = None
    stop_price: Price | None = None
    trailing_amount: Price | None = None
    trailing_percent: Decimal_ | None = None
    expire_at: UtcDatetime | None = None
    post_only: bool = False
    emulated: bool = Field(
        default=False,
        description="The venue lacks this order's type: the OMS holds it and releases it as a "
        "market or limit order when the quotes trigger it",
    )
    released_at: UtcDatetime | None = Field(
        default=None,
        description="When an emulated order's trigger fired; None while the OMS still holds it",
    )

    @property
    def is_held(self) -> bool:
        """Held by the OMS until its trigger: no venue has seen it."""
        return self.emulated and self.status is OrderStatus.INITIALIZED and self.released_at is None


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
    mark_price: Price | None = Field(
        default=None, description="The newest quote's last price; None when none was seen"
    )
    marked_at: UtcDatetime | None = None
    unrealised_pnl: Money | None = Field(
        default=None, description="(mark - average entry) x quantity; None without a mark"
    )


class PositionChanged(Message):
    """A position moved because of a fill."""

    schema_name = "PositionChanged"

    position: PositionView
    order_id: str
    fill_id: str


class TargetWeight(Contract):
    """One symbol's share of a portfolio's value after a rebalance (0.25 is a quarter)."""

    symbol: Name
    weight: Decimal_ = Field(
        ge=0,
        description="From 0 (sell it all) to 1; all weights and the reserve together at most 1 "
        "(checked by RebalancePortfolio.allocation_problem)",
    )


class RebalancePortfolio(Message):
    """Command to the OMS: bring one strategy's holdings on one venue to target weights.

    Symbols held but not named keep their holdings (and count in the portfolio's value). The OMS
    sells first, then buys once the sells are done; ``reserve`` is the fraction of the value kept
    in cash. Published by the operator (``ordo rebalance``) or a strategy.
    """

    schema_name = "RebalancePortfolio"

    rebalance_id: str = Field(min_length=1, max_length=36)
    account: Name
    strategy: Name
    venue: Name
    targets: tuple[TargetWeight, ...] = Field(min_length=1)
    reserve: Decimal_ = Field(
        default=Decimal(0), ge=0, description="The fraction of the value kept in cash (< 1)"
    )

    @model_validator(mode="after")
    def _one_weight_per_symbol(self) -> "RebalancePortfolio":
        symbols = [target.symbol for target in self.targets]
        if len(set(symbols)) != len(symbols):
            raise ValueError(f"each symbol may have one target weight, not several: {symbols}")
        return self

    def allocation_problem(self) -> str | None:
        """Why the weights cannot be met, or None. Not a validator: the OMS records a refused
        rebalance with this reason, and the CLI asks before it publishes."""
        total = sum((target.weight for target in self.targets), Decimal(0))
        if self.reserve >= 1:
            return f"a cash reserve of {self.reserve} leaves nothing to invest: give less than 1"
        if total + self.reserve > 1:
            return (
                f"the weights ({total}) and the cash reserve ({self.reserve}) add up to more "
                "than the whole portfolio"
            )
        return None
