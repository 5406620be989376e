"""Every venue call the service makes: through the venue + account's breaker, traced.

Business errors (the venue said no) pass through the breaker without counting; transient ones
count. Reads and cancels are retried on transient errors (they are safe to repeat); order
creation never is: after a failure its outcome is resolved by looking the order up. A create is
cut off at its deadline (a timeout: the outcome is unknown), so that it never outlives the lease
its attempt holds on the order.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from opentelemetry import trace
from opentelemetry.trace import Span

from ordo.contracts.enums import BreakerState
from ordo.contracts.execution import VenueBalance, VenuePosition
from ordo.contracts.orders import OrderSpec
from ordo.execution.errors import (
    BusinessVenueError,
    TransientVenueError,
    UnknownVenue,
    VenueTimeout,
)
from ordo.execution.venues.base import (
    ClosableVenue,
    FollowedVenue,
    QuotedVenue,
    Venue,
    VenueFill,
    VenueOrder,
    VenueQuote,
)
from ordo.execution.venues.registry import VenueRegistry
from ordo.kit.breaker import Breakers

T = TypeVar("T")
tracer = trace.get_tracer(__name__)

_BREAKER_PREFIX = "venue:"


def breaker_name(venue: str, account: str) -> str:
    return f"{_BREAKER_PREFIX}{venue}:{account}"


def parse_breaker_name(name: str, venues: Iterable[str]) -> tuple[str, str] | None:
    """(venue, account) of a venue breaker, or None for another breaker (``nats``, channels).

    Venue names may hold a colon themselves (``ccxt:binance``), so the known names decide where
    the venue ends; the longest one that fits wins.
    """
    if not name.startswith(_BREAKER_PREFIX):
        return None
    rest = name.removeprefix(_BREAKER_PREFIX)
    for venue in sorted(venues, key=len, reverse=True):
        if rest.startswith(f"{venue}:") and len(rest) > len(venue) + 1:
            return venue, rest.removeprefix(f"{venue}:")
    venue, _, account = rest.rpartition(":")
    return (venue, account) if venue and account else None


def _is_transient(error: BaseException) -> bool:
    return isinstance(error, TransientVenueError)


@dataclass(frozen=True, slots=True)
class VenueHoldings:
    """What an account holds at a venue, read in one go for a snapshot."""

    positions: list[VenuePosition]
    open_orders: list[VenueOrder]
    balances: list[VenueBalance]
    recent_fills: list[VenueFill]


class VenueGateway:
    def __init__(
        self, registry: VenueRegistry, breakers: Breakers, *, create_deadline_seconds: float
    ) -> None:
        self._registry = registry
        self._breakers = breakers
        self._create_deadline = create_deadline_seconds

    def adapter(self, venue: str, account: str) -> Venue:
        """The account's adapter; raises ``UnknownVenue`` (a business error) for no such venue."""
        return self._registry.get(venue, account)

    def venue_names(self) -> list[str]:
        return self._registry.names()

    def active(self) -> list[tuple[str, str, Venue]]:
        """Every adapter opened so far, as (venue, account, adapter)."""
        return self._registry.active()

    async def breaker_state(self, venue: str, account: str) -> BreakerState:
        """The venue account's breaker, as every replica sees it."""
        return await self._breakers.shared_state(breaker_name(venue, account))

    async def create_order(self, spec: OrderSpec) -> VenueOrder:
        """Place an order, once: no retry, whatever the failure."""
        with _span("create_order", spec.venue, spec.account, spec.order_id) as span:
            adapter = self.adapter(spec.venue, spec.account)

            async def create() -> VenueOrder:
                try:
                    async with asyncio.timeout(self._create_deadline):
                        return await adapter.create_order(spec)
                except TimeoutError:
                    raise VenueTimeout(
                        f"creating order {spec.order_id} took longer than "
                        f"{self._create_deadline:g}s; it may have been placed",
                        venue=spec.venue,
                    ) from None

            order = await self._breakers.call(
                breaker_name(spec.venue, spec.account), create, ignore=(BusinessVenueError,)
            )
            span.set_attribute("ordo.venue_order_id", order.venue_order_id)
            return order

    async def fetch_order(self, venue: str, account: str, order_id: str, symbol: str) -> VenueOrder:
        with _span("fetch_order", venue, account, order_id) as span:
            adapter = self.adapter(venue, account)
            order = await self._read(venue, account, lambda: adapter.fetch_order(order_id, symbol))
            span.set_attribute("ordo.venue_order_id", order.venue_order_id)
            return order

    async def cancel_order(
        self, venue: str, account: str, order_id: str, symbol: str
    ) -> VenueOrder:
        """Cancel by client order id. Retried: canceling twice is the same as canceling once."""
        with _span("cancel_order", venue, account, order_id) as span:
            adapter = self.adapter(venue, account)
            order = await self._read(venue, account, lambda: adapter.cancel_order(order_id, symbol))
            span.set_attribute("ordo.venue_order_id", order.venue_order_id)
            return order

    async def holdings(self, venue: str, account: str, fills_since: datetime) -> VenueHoldings:
        with _span("snapshot", venue, account):
            adapter = self.adapter(venue, account)
            return VenueHoldings(
                positions=await self._read(venue, account, adapter.positions),
                open_orders=await self._read(venue, account, adapter.open_orders),
                balances=await self._read(venue, account, adapter.balances),
                recent_fills=await self._read(
                    venue, account, lambda: adapter.recent_fills(fills_since)
                ),
            )

    async def quote(self, venue: str, account: str, symbol: str) -> VenueQuote:
        """A market's quote, read through the account's breaker like any other read."""
        with _span("quote", venue, account):
            adapter = self.adapter(venue, account)
            if not isinstance(adapter, QuotedVenue):
                raise UnknownVenue(f"venue {venue!r} does not read quotes", venue=venue)
            return await self._read(venue, account, lambda: adapter.quote(symbol))

    async def probe(self, venue: str, account: str) -> None:
        """One authenticated read (the balances), once: do the credentials work?"""
        with _span("probe", venue, account):
            adapter = self.adapter(venue, account)
            await self._breakers.call(
                breaker_name(venue, account), adapter.balances, ignore=(BusinessVenueError,)
            )

    async def order_updates(self, venue: str, account: str) -> AsyncIterator[str]:
        """The client order ids the venue pushes as orders change, each wait through the breaker."""
        adapter = self.adapter(venue, account)
        if not isinstance(adapter, FollowedVenue) or not adapter.follows_orders:
            return
        updates = aiter(adapter.order_updates())
        while True:
            yield await self._breakers.call(
                breaker_name(venue, account),
                lambda: anext(updates),
                ignore=(BusinessVenueError,),
            )

    async def close(self) -> None:
        """Release every adapter's connections (at shutdown)."""
        for _, _, adapter in self.active():
            if isinstance(adapter, ClosableVenue):
                await adapter.close()

    async def _read(self, venue: str, account: str, operation: Callable[[], Awaitable[T]]) -> T:
        return await self._breakers.call(
            breaker_name(venue, account),
            operation,
            ignore=(BusinessVenueError,),
            retry=_is_transient,
        )


@contextmanager
def _span(operation: str, venue: str, account: str, order_id: str | None = None) -> Iterator[Span]:
    attributes = {"ordo.venue": venue, "ordo.account": account}
    if order_id is not None:
        attributes["ordo.client_order_id"] = order_id
        attributes["ordo.order_id"] = order_id
    with tracer.start_as_current_span(f"venue.{operation}", attributes=attributes) as span:
        yield span
