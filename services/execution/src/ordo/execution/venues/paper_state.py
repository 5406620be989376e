"""The paper venue's books as plain values: what it persists and restores after a restart."""

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ordo.contracts.enums import ExecutionStatus
from ordo.contracts.execution import Fill
from ordo.contracts.orders import OrderSpec
from ordo.contracts.types import Decimal_, UtcDatetime
from ordo.execution.venues.base import OPEN_STATUSES, VenueOrder


class PaperOrder(BaseModel):
    """One order in the paper books. Immutable: every change stores a new copy."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    spec: OrderSpec
    venue_order_id: str
    status: ExecutionStatus
    fills: tuple[Fill, ...] = ()
    reason: str | None = None
    created_at: UtcDatetime = Field(description="When the order reached the book (after latency)")
    updated_at: UtcDatetime
    triggered: bool = Field(default=False, description="A stop order whose stop was reached")
    trail_anchor: Decimal_ | None = Field(
        default=None, description="A trailing stop's best price since placement"
    )

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def filled_quantity(self) -> Decimal:
        return sum((fill.quantity for fill in self.fills), Decimal(0))

    @property
    def remaining_quantity(self) -> Decimal:
        return self.spec.quantity - self.filled_quantity

    @property
    def average_price(self) -> Decimal | None:
        filled = self.filled_quantity
        if not filled:
            return None
        return sum((fill.quantity * fill.price for fill in self.fills), Decimal(0)) / filled

    def to_venue_order(self) -> VenueOrder:
        return VenueOrder(
            order_id=self.spec.order_id,
            venue_order_id=self.venue_order_id,
            symbol=self.spec.symbol,
            side=self.spec.side,
            status=self.status,
            quantity=self.spec.quantity,
            filled_quantity=self.filled_quantity,
            average_price=self.average_price,
            fills=self.fills,
            reason=self.reason,
            venue_time=self.updated_at,
        )


class PriceMove(BaseModel):
    """A market's price moved by trading, as a fraction of the price, as of ``at``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fraction: Decimal_
    at: UtcDatetime


class PaperVenueState(BaseModel):
    """A snapshot of one account's paper books. ``to_dict`` is JSON-ready (decimals as strings)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = 1
    feed_origin: UtcDatetime
    balances: dict[str, Decimal_]
    positions: dict[str, Decimal_]
    orders: tuple[PaperOrder, ...] = ()  # in the order they were created
    closed_order_ids: tuple[str, ...] = ()  # in the order they finished; the oldest go first
    orders_created: int = 0  # numbers the venue order ids
    fault_draws: int = 0  # how far the random sequence (faults, latency) has gone
    impact: dict[str, PriceMove] = Field(
        default_factory=dict, description="The market impact of recent taker trades, per market"
    )

    @classmethod
    def opening(cls, *, feed_origin: datetime, quote_currency: str, balance: Decimal) -> Self:
        """The books of a new account: its starting money and nothing else."""
        return cls(feed_origin=feed_origin, balances={quote_currency: balance}, positions={})

    @model_validator(mode="after")
    def _closed_orders_are_known(self) -> Self:
        known = {order.spec.order_id for order in self.orders}
        if len(known) != len(self.orders):
            raise ValueError("paper venue state holds two orders with the same client order id")
        if unknown := set(self.closed_order_ids) - known:
            raise ValueError(f"closed order ids {sorted(unknown)} are not among the orders")
        return self

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls.model_validate(data)
