"""What venues report, and the snapshots the reconciler asks for."""

from pydantic import Field

from ordo.contracts.enums import BreakerState, ExecutionStatus, Side
from ordo.contracts.envelope import Contract, Message
from ordo.contracts.signals import Name
from ordo.contracts.types import Decimal_, Money, Price, Quantity, UtcDatetime


class Fill(Contract):
    fill_id: str = Field(description="Unique per venue; the OMS applies each fill once")
    quantity: Quantity = Field(gt=0)
    price: Price
    fee: Money
    fee_currency: str
    liquidity: str = Field(default="taker", pattern="^(maker|taker)$")
    filled_at: UtcDatetime


class ExecutionReport(Message):
    """The venue's word on one order. ``cumulative_quantity`` makes it idempotent to apply."""

    schema_name = "ExecutionReport"

    order_id: str = Field(description="The client order id")
    venue_order_id: str | None = None
    account: Name
    venue: Name
    symbol: Name
    side: Side
    status: ExecutionStatus
    cumulative_quantity: Quantity
    average_price: Price | None = None
    fill: Fill | None = None
    reason: str | None = None
    reconciliation: bool = Field(default=False, description="Inferred by the reconciler")
    venue_time: UtcDatetime | None = None


class VenueStatusChanged(Message):
    """A venue's circuit breaker changed state for one account."""

    schema_name = "VenueStatusChanged"

    venue: Name
    account: Name
    breaker: BreakerState
    reason: str | None = None
    halted: bool = Field(
        default=False,
        description="Trading on the venue is halted for the account (its credentials were "
        "refused) until they work again",
    )


class RequestVenueSnapshot(Message):
    """Request/reply: the reconciler asks execution what the venue holds."""

    schema_name = "RequestVenueSnapshot"

    account: Name
    venue: Name
    fills_since: UtcDatetime | None = Field(
        default=None, description="The earliest fills to include (default: the last 24 hours)"
    )


class VenuePosition(Contract):
    symbol: Name
    quantity: Decimal_


class VenueOpenOrder(Contract):
    order_id: str | None
    venue_order_id: str
    symbol: Name
    side: Side
    quantity: Quantity
    filled_quantity: Quantity


class VenueFillRecord(Contract):
    """One fill as the venue lists it, with the order it belongs to."""

    order_id: str | None = Field(
        description="The client order id (as the venue gives it, or of an order we placed)"
    )
    venue_order_id: str
    symbol: Name
    side: Side
    fill: Fill


class VenueBalance(Contract):
    currency: str
    total: Money
    free: Money


class VenueSnapshot(Message):
    """The venue's view, as it reported it."""

    schema_name = "VenueSnapshot"

    account: Name
    venue: Name
    taken_at: UtcDatetime
    positions: tuple[VenuePosition, ...] = ()
    open_orders: tuple[VenueOpenOrder, ...] = ()
    balances: tuple[VenueBalance, ...] = ()
    recent_fills: tuple[VenueFillRecord, ...] = Field(
        default=(), description="Fills since the request's fills_since, oldest first"
    )
