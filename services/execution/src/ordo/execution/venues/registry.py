"""Which adapter serves which venue: a name (``paper``, ``ccxt:binance``) maps to a factory.

A factory makes the adapter for one account; the registry makes it once and hands out the same
instance afterwards, so an account's session (or paper books) lives as long as the service.
Adding a venue is one ``register`` call next to its adapter; nothing else changes.
"""

from collections.abc import Callable

from ordo.execution.errors import UnknownVenue
from ordo.execution.venues.base import Venue

VenueFactory = Callable[[str], Venue]
"""Makes the adapter for one account, given the account's name."""


class VenueRegistry:
    def __init__(self) -> None:
        self._factories: dict[str, VenueFactory] = {}
        # Bounded by configuration: one adapter per venue and account that trades on it.
        self._adapters: dict[tuple[str, str], Venue] = {}

    def register(self, name: str, factory: VenueFactory) -> None:
        if not name:
            raise ValueError("a venue needs a name to be registered under")
        if name in self._factories:
            raise ValueError(f"venue {name!r} is already registered")
        self._factories[name] = factory

    def names(self) -> list[str]:
        return sorted(self._factories)

    def get(self, venue: str, account: str) -> Venue:
        """The adapter for ``account`` on ``venue``, made on first use."""
        key = (venue, account)
        adapter = self._adapters.get(key)
        if adapter is None:
            adapter = self._adapters[key] = self._factory(venue)(account)
        return adapter

    def active(self) -> list[tuple[str, str, Venue]]:
        """Every adapter made so far, as (venue, account, adapter), e.g. to persist paper books."""
        return [(venue, account, adapter) for (venue, account), adapter in self._adapters.items()]

    def _factory(self, venue: str) -> VenueFactory:
        factory = self._factories.get(venue)
        if factory is None:
            registered = ", ".join(self.names()) or "none"
            raise UnknownVenue(
                f"no adapter is registered for venue {venue!r} (registered: {registered})"
            )
        return factory
