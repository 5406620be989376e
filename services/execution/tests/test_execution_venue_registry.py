"""The venue registry: names to adapters, one adapter per venue and account."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from ordo.contracts.enums import Side
from ordo.contracts.orders import OrderSpec
from ordo.execution.errors import BusinessVenueError, UnknownVenue
from ordo.execution.venues import (
    PaperVenue,
    PaperVenueConfig,
    PaperVenueState,
    VenueRegistry,
    paper_venue_factory,
)

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def clock() -> datetime:
    return NOW


def registry_with_paper(saved: dict[str, PaperVenueState] | None = None) -> VenueRegistry:
    registry = VenueRegistry()
    states = saved or {}
    registry.register("paper", paper_venue_factory(PaperVenueConfig(), clock, 1, states.get))
    return registry


def test_each_account_gets_its_own_adapter_and_keeps_it() -> None:
    registry = registry_with_paper()

    first = registry.get("paper", "acct-1")

    assert isinstance(first, PaperVenue)
    assert registry.get("paper", "acct-1") is first
    assert registry.get("paper", "acct-2") is not first
    assert [(v, a) for v, a, _ in registry.active()] == [("paper", "acct-1"), ("paper", "acct-2")]


def test_an_unknown_venue_is_a_clear_business_error() -> None:
    registry = registry_with_paper()

    with pytest.raises(UnknownVenue, match=r"'ccxt:kraken' \(registered: paper\)"):
        registry.get("ccxt:kraken", "acct-1")
    assert issubclass(UnknownVenue, BusinessVenueError)


def test_a_new_venue_is_one_register_call() -> None:
    registry = registry_with_paper()
    made_for: list[str] = []

    def factory(account: str) -> PaperVenue:
        made_for.append(account)
        return PaperVenue(PaperVenueConfig(), clock, 2)

    registry.register("ccxt:binance", factory)

    registry.get("ccxt:binance", "acct-9")
    assert made_for == ["acct-9"]
    assert registry.names() == ["ccxt:binance", "paper"]


def test_a_venue_name_cannot_be_registered_twice() -> None:
    registry = registry_with_paper()

    with pytest.raises(ValueError, match="already registered"):
        registry.register("paper", paper_venue_factory(PaperVenueConfig(), clock, 1))


async def test_the_paper_factory_restores_an_account_from_its_saved_books() -> None:
    before = PaperVenue(PaperVenueConfig(), clock, 1)
    await before.create_order(
        OrderSpec(
            order_id="o-1",
            account="acct-1",
            strategy="trend",
            venue="paper",
            symbol="BTC/USDT",
            side=Side.BUY,
            quantity=Decimal("0.01"),
        )
    )
    registry = registry_with_paper({"acct-1": before.snapshot()})

    restored = registry.get("paper", "acct-1")

    assert await restored.positions() == await before.positions()
    assert await registry.get("paper", "acct-2").positions() == []
