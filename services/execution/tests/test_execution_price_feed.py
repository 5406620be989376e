"""The paper venue's random-walk prices: repeatable, per whole second, on tick, never zero."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ordo.execution.venues import RandomWalkFeed

BTC = "BTC/USDT"
ORIGIN = datetime(2025, 1, 1, tzinfo=UTC)
TICK = Decimal("0.01")


def walk(seed: int = 1, volatility: str = "0.0001") -> RandomWalkFeed:
    return RandomWalkFeed(
        seed,
        {BTC: Decimal(60_000), "SOL/USDT": Decimal(150)},
        Decimal(volatility),
        origin=ORIGIN,
        tick_sizes={BTC: TICK, "SOL/USDT": TICK},
    )


def seconds_after_origin(*seconds: int) -> list[datetime]:
    return [ORIGIN + timedelta(seconds=s) for s in seconds]


def test_the_walk_starts_at_the_start_price() -> None:
    assert walk().price(BTC, ORIGIN) == Decimal("60000.00")


def test_the_same_seed_gives_the_same_prices_whatever_order_they_are_asked_in() -> None:
    times = seconds_after_origin(1, 60, 3_600, 86_400, 30 * 86_400)
    forwards = [walk(5).price(BTC, at) for at in times]

    backwards_feed = walk(5)
    backwards = [backwards_feed.price(BTC, at) for at in reversed(times)]

    assert forwards == list(reversed(backwards))


def test_another_seed_walks_another_way() -> None:
    times = seconds_after_origin(*range(1, 50))

    assert [walk(1).price(BTC, at) for at in times] != [walk(2).price(BTC, at) for at in times]


def test_the_price_holds_for_a_whole_second() -> None:
    feed = walk()
    second = ORIGIN + timedelta(seconds=42)

    assert feed.price(BTC, second) == feed.price(BTC, second + timedelta(milliseconds=999))


def test_the_price_moves_as_the_seconds_pass() -> None:
    feed = walk()

    assert len({feed.price(BTC, at) for at in seconds_after_origin(*range(100))}) > 1


def test_without_volatility_the_price_stays_put() -> None:
    feed = walk(volatility="0")

    assert {feed.price(BTC, at) for at in seconds_after_origin(0, 10, 10_000)} == {Decimal(60_000)}


def test_a_symbol_the_feed_does_not_know_is_refused() -> None:
    with pytest.raises(LookupError, match="no market 'DOGE/USDT'"):
        walk().price("DOGE/USDT", ORIGIN)


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        walk().price(BTC, datetime(2025, 1, 1))  # noqa: DTZ001 - the point of the test


def test_without_an_origin_the_walk_starts_when_first_asked() -> None:
    feed = RandomWalkFeed(3, {BTC: Decimal(60_000)}, Decimal("0.001"))
    first = ORIGIN + timedelta(hours=5, microseconds=300)

    assert feed.price(BTC, first) == Decimal(60_000)
    assert feed.origin == ORIGIN + timedelta(hours=5)


@settings(max_examples=100, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**64),
    seconds=st.integers(min_value=0, max_value=10 * 365 * 86_400),
)
def test_every_price_is_positive_on_tick_and_repeatable(seed: int, seconds: int) -> None:
    at = ORIGIN + timedelta(seconds=seconds)

    price = walk(seed).price("SOL/USDT", at)

    assert price > 0
    assert price % TICK == 0
    assert walk(seed).price("SOL/USDT", at) == price
