"""The port every venue adapter implements, and the values it returns.

An adapter is bound to one account on one venue. Its methods raise only the errors of
:mod:`ordo.execution.errors`; orders are addressed by their client order id (the OMS order id),
because after a timeout on creation the venue order id is unknown.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Protocol, runtime_checkable

from ordo.contracts.enums import ExecutionStatus, Side
from ordo.contracts.execution import Fill, VenueBalance, VenuePosition
from ordo.contracts.orders import OrderSpec

OPEN_STATUSES = frozenset(
    {ExecutionStatus.ACCEPTED, ExecutionStatus.TRIGGERED, ExecutionStatus.PARTIALLY_FILLED}
)
"""The statuses in which an order can still fill or be canceled."""


@dataclass(frozen=True, slots=True)
class MarketRules:
    """A market's precision and minimum size, as the venue enforces them."""

    tick_size: Decimal
    step_size: Decimal
    min_quantity: Decimal
    min_notional: Decimal

    def __post_init__(self) -> None:
        if self.tick_size <= 0 or self.step_size <= 0:
            raise ValueError(
                f"tick size and step size must be positive, got {self.tick_size} and "
                f"{self.step_size}"
            )
        if self.min_quantity < 0 or self.min_notional < 0:
            raise ValueError(
                f"minimum quantity and notional must not be negative, got {self.min_quantity} "
                f"and {self.min_notional}"
            )

    def quantity_violation(self, quantity: Decimal) -> str | None:
        """Why the venue would refuse this quantity, or None if it is acceptable."""
        if violation := _off_grid("quantity", quantity, "step size", self.step_size):
            return violation
        if quantity < self.min_quantity:
            return f"quantity {quantity} is below the minimum quantity {self.min_quantity}"
        return None

    def price_violation(self, price: Decimal) -> str | None:
        """Why the venue would refuse this limit price, or None if it is acceptable."""
        return _off_grid("price", price, "tick size", self.tick_size)

    def notional_violation(self, quantity: Decimal, price: Decimal) -> str | None:
        """Why the order's value is too small for the venue, or None if it is large enough."""
        notional = quantity * price
        if notional < self.min_notional:
            return f"notional {notional} is below the minimum notional {self.min_notional}"
        return None


def _off_grid(what: str, value: Decimal, unit_name: str, unit: Decimal) -> str | None:
    try:
        off = value % unit != 0
    except InvalidOperation:
        # More whole units than the decimal context's 28 digits: Decimal cannot even take the
        # remainder. No real order is that large; say so instead of failing like a venue outage.
        return f"{what} {value} is out of range for the {unit_name} {unit}"
    return f"{what} {value} is not a multiple of the {unit_name} {unit}" if off else None


@dataclass(frozen=True, slots=True)
class VenueOrder:
    """One order as the venue reports it.

    ``filled_quantity`` is cumulative, so applying the same report twice changes nothing.
    ``fills`` holds every fill of the order so far, oldest first; the OMS applies each
    ``fill_id`` once.
    """

    order_id: str  # the client order id
    venue_order_id: str
    symbol: str
    side: Side
    status: ExecutionStatus
    quantity: Decimal
    filled_quantity: Decimal
    average_price: Decimal | None
    fills: tuple[Fill, ...] = ()
    reason: str | None = None
    venue_time: datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def remaining_quantity(self) -> Decimal:
        return self.quantity - self.filled_quantity


@dataclass(frozen=True, slots=True)
class VenueFill:
    """A fill together with the order it belongs to (a bare ``Fill`` does not say which)."""

    order_id: str | None  # the client order id, when the venue says it
    venue_order_id: str
    symbol: str
    side: Side
    fill: Fill


@runtime_checkable
class Venue(Protocol):
    """One account on one venue."""

    async def create_order(self, spec: OrderSpec) -> VenueOrder:
        """Place an order. Idempotent on ``spec.order_id``: a repeat returns the existing order."""
        ...

    async def cancel_order(self, order_id: str, symbol: str) -> VenueOrder:
        """Cancel by client order id; a finished order is returned as it is."""
        ...

    async def fetch_order(self, order_id: str, symbol: str) -> VenueOrder:
        """Look an order up by client order id; raises ``OrderNotFound`` if it never arrived."""
        ...

    async def open_orders(self) -> list[VenueOrder]: ...

    async def recent_fills(self, since: datetime) -> list[VenueFill]:
        """Fills at or after ``since``, oldest first."""
        ...

    async def balances(self) -> list[VenueBalance]: ...

    async def positions(self) -> list[VenuePosition]:
        """Signed base quantities per symbol (short < 0); flat symbols are left out."""
        ...

    async def market_rules(self, symbol: str) -> MarketRules: ...

    async def markets(self) -> list[str]:
        """The venue's unified symbols, e.g. ``BTC/USDT``."""
        ...


@dataclass(frozen=True, slots=True)
class VenueQuote:
    """A market's top of book and last trade price, as the venue stated them at ``quoted_at``."""

    symbol: str
    last: Decimal
    bid: Decimal | None
    ask: Decimal | None
    quoted_at: datetime


@runtime_checkable
class QuotedVenue(Protocol):
    """A venue account that reads its markets' quotes (see :mod:`ordo.execution.quotes`)."""

    async def quote(self, symbol: str) -> VenueQuote: ...


@runtime_checkable
class FollowedVenue(Protocol):
    """A venue that pushes the changes of the account's orders (a websocket), and is polled."""

    @property
    def follows_orders(self) -> bool:
        """Whether ``order_updates`` works for this account."""
        ...

    @property
    def poll_interval_seconds(self) -> float:
        """How often open orders are looked up anyway (a push can be missed)."""
        ...

    def order_updates(self) -> AsyncIterator[str]:
        """The client order ids of orders as they change, for as long as it runs."""
        ...


@runtime_checkable
class ClosableVenue(Protocol):
    """A venue holding connections to release at shutdown."""

    async def close(self) -> None: ...
