"""Venue adapters: the port every venue implements, the paper venue, and the registry.

The ccxt adapter (`ccxt_venue`) is imported only where ccxt accounts are configured: loading
ccxt takes seconds.
"""

from ordo.execution.venues.base import MarketRules, Venue, VenueFill, VenueOrder
from ordo.execution.venues.paper import (
    PaperMarket,
    PaperVenue,
    PaperVenueConfig,
    PaperVenueState,
    paper_venue_factory,
)
from ordo.execution.venues.price_feed import PriceFeed, RandomWalkFeed
from ordo.execution.venues.registry import VenueFactory, VenueRegistry

__all__ = [
    "MarketRules",
    "PaperMarket",
    "PaperVenue",
    "PaperVenueConfig",
    "PaperVenueState",
    "PriceFeed",
    "RandomWalkFeed",
    "Venue",
    "VenueFactory",
    "VenueFill",
    "VenueOrder",
    "VenueRegistry",
    "paper_venue_factory",
]
