"""The paper venue: fills, fees, venue rules, idempotent creates, funds, faults and persistence."""

import asyncio
import json
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paper_support import BTC, ETH, START, ManualClock, SettablePrices, order

from ordo.contracts.enums import ExecutionStatus, Side, TimeInForce
from ordo.contracts.execution import VenueBalance
from ordo.execution.errors import (
    InsufficientFunds,
    InvalidOrder,
    OrderNotFound,
    OrderRejected,
    VenueTimeout,
    VenueUnavailable,
)
from ordo.execution.venues import (
    PaperVenue,
    PaperVenueConfig,
    PaperVenueState,
    Venue,
    VenueOrder,
)


def paper(
    config: PaperVenueConfig | None = None,
    *,
    seed: int = 7,
    clock: ManualClock | None = None,
    feed: SettablePrices | None = None,
) -> PaperVenue:
    return PaperVenue(config or PaperVenueConfig(), clock or ManualClock(), seed, feed=feed)


def balance_of(balances: list[VenueBalance], currency: str) -> tuple[Decimal, Decimal]:
    entry = next(b for b in balances if b.currency == currency)
    return entry.total, entry.free


def test_the_paper_venue_implements_the_venue_port() -> None:
    assert isinstance(paper(), Venue)


async def test_market_buy_fills_at_the_feed_price_and_pays_the_taker_fee() -> None:
    clock = ManualClock()
    venue = paper(clock=clock)
    price = venue.price(BTC, clock.now)

    placed = await venue.create_order(order(quantity="0.01"))

    assert placed.status is ExecutionStatus.FILLED
    assert placed.filled_quantity == Decimal("0.01")
    assert placed.average_price == price
    (fill,) = placed.fills
    assert fill.price == price
    assert fill.fee == Decimal("0.01") * price * Decimal("0.001")
    assert fill.fee_currency == "USDT"
    assert fill.liquidity == "taker"
    assert fill.fill_id == f"{placed.venue_order_id}-1"
    balances = await venue.balances()
    assert balance_of(balances, "USDT")[0] == Decimal(100_000) - Decimal("0.01") * price - fill.fee
    assert balance_of(balances, "BTC")[0] == Decimal("0.01")


async def test_market_sell_of_what_is_not_held_leaves_a_short_and_credits_the_proceeds() -> None:
    venue = paper(feed=SettablePrices(BTC_USDT="60000"))

    sold = await venue.create_order(order(side=Side.SELL, quantity="0.5"))

    assert sold.status is ExecutionStatus.FILLED
    positions = await venue.positions()
    assert [(p.symbol, p.quantity) for p in positions] == [(BTC, Decimal("-0.5"))]
    balances = await venue.balances()
    assert balance_of(balances, "USDT")[0] == Decimal(100_000) + Decimal(30_000) - Decimal(30)
    assert balance_of(balances, "BTC")[0] == Decimal("-0.5")


async def test_the_same_seed_gives_the_same_prices_and_fills() -> None:
    async def session(seed: int) -> list[VenueOrder]:
        clock = ManualClock()
        venue = paper(seed=seed, clock=clock)
        placed = []
        for n in range(5):
            clock.advance(37)
            side = Side.BUY if n % 2 == 0 else Side.SELL
            placed.append(await venue.create_order(order(f"o-{n}", side=side)))
        return placed

    first, again, other = await session(11), await session(11), await session(12)

    assert first == again
    assert [o.average_price for o in first] != [o.average_price for o in other]


async def test_an_order_below_the_minimum_notional_is_invalid() -> None:
    venue = paper(feed=SettablePrices(BTC_USDT="60000"))

    with pytest.raises(InvalidOrder, match="minimum notional 5"):
        await venue.create_order(order(quantity="0.0001", limit="40000"))


async def test_a_quantity_off_the_step_size_is_invalid() -> None:
    venue = paper()

    with pytest.raises(InvalidOrder, match=r"step size 0\.0001"):
        await venue.create_order(order(quantity="0.00015"))


async def test_an_absurdly_large_quantity_is_invalid_not_a_venue_failure() -> None:
    venue = paper()

    # 10**34 steps: more than Decimal can divide in its 28 digits.
    with pytest.raises(InvalidOrder, match="out of range for the step size"):
        await venue.create_order(order(quantity="1E+30"))

    assert venue.snapshot().orders == ()


async def test_a_limit_price_off_the_tick_size_is_invalid() -> None:
    venue = paper()

    with pytest.raises(InvalidOrder, match=r"tick size 0\.01"):
        await venue.create_order(order(limit="59000.005"))


async def test_an_unknown_market_is_invalid() -> None:
    venue = paper()

    with pytest.raises(InvalidOrder, match="no market 'DOGE/USDT'"):
        await venue.create_order(order(symbol="DOGE/USDT", quantity="100"))


async def test_a_repeated_client_order_id_returns_the_existing_order() -> None:
    clock = ManualClock()
    venue = paper(clock=clock)
    first = await venue.create_order(order("o-1"))
    balances_after_first = await venue.balances()
    clock.advance(60)

    again = await venue.create_order(order("o-1"))

    assert again == first
    assert await venue.balances() == balances_after_first
    assert len(await venue.recent_fills(START)) == 1


async def test_a_client_order_id_reused_for_a_different_order_is_invalid() -> None:
    venue = paper()
    await venue.create_order(order("o-1", quantity="0.01"))

    with pytest.raises(InvalidOrder, match="differs in quantity"):
        await venue.create_order(order("o-1", quantity="0.02"))


async def test_a_buy_beyond_the_quote_balance_is_refused_and_books_nothing() -> None:
    venue = paper(feed=SettablePrices(BTC_USDT="60000"))

    with pytest.raises(InsufficientFunds, match=r"needs 120120\.000 USDT"):
        await venue.create_order(order(quantity="2"))

    assert await venue.positions() == []
    assert venue.snapshot().orders == ()


async def test_quote_held_for_a_resting_buy_is_not_free_for_another_buy() -> None:
    venue = paper(feed=SettablePrices(BTC_USDT="60000"))
    await venue.create_order(order("rest", quantity="1.5", limit="50000"))

    total, free = balance_of(await venue.balances(), "USDT")
    assert total == Decimal(100_000)
    assert free == Decimal(100_000) - Decimal(75_000) * Decimal("1.001")
    with pytest.raises(InsufficientFunds):
        await venue.create_order(order("market", quantity="0.5"))


async def test_a_resting_limit_fills_at_its_limit_as_maker_once_the_price_reaches_it() -> None:
    config = PaperVenueConfig(maker_fee_rate=Decimal("0.0002"))
    prices = SettablePrices(BTC_USDT="60000")
    clock = ManualClock()
    venue = paper(config, clock=clock, feed=prices)

    resting = await venue.create_order(order(quantity="0.1", limit="59000"))
    assert resting.status is ExecutionStatus.ACCEPTED
    assert await venue.open_orders() == [resting]

    prices.set(BTC, "58950.5")
    clock.advance(5)
    (filled,) = venue.match(clock.now)

    assert filled.status is ExecutionStatus.FILLED
    (fill,) = filled.fills
    assert (fill.price, fill.liquidity) == (Decimal(59000), "maker")
    assert fill.fee == Decimal("0.1") * Decimal(59000) * Decimal("0.0002")
    assert fill.filled_at == clock.now
    assert await venue.open_orders() == []


async def test_a_marketable_limit_fills_at_once_at_the_better_feed_price() -> None:
    venue = paper(feed=SettablePrices(BTC_USDT="60000"))

    placed = await venue.create_order(order(quantity="0.1", limit="61000"))

    assert placed.status is ExecutionStatus.FILLED
    assert placed.fills[0].price == Decimal(60000)
    assert placed.fills[0].liquidity == "taker"


async def test_a_post_only_limit_that_would_take_liquidity_is_rejected() -> None:
    venue = paper(feed=SettablePrices(BTC_USDT="60000"))

    with pytest.raises(OrderRejected, match="post-only"):
        await venue.create_order(order(quantity="0.1", limit="61000", post_only=True))


async def test_an_ioc_limit_that_cannot_fill_expires_at_once() -> None:
    venue = paper(feed=SettablePrices(BTC_USDT="60000"))

    placed = await venue.create_order(
        order(quantity="0.1", limit="59000", time_in_force=TimeInForce.IOC)
    )

    assert placed.status is ExecutionStatus.EXPIRED
    assert placed.fills == ()
    assert await venue.open_orders() == []


async def test_a_reduce_only_order_may_not_grow_the_position() -> None:
    venue = paper()
    await venue.create_order(order("long", quantity="0.01"))

    with pytest.raises(InvalidOrder, match="would not reduce"):
        await venue.create_order(order("more", quantity="0.01", reduce_only=True))
    with pytest.raises(InvalidOrder, match="would not reduce"):
        await venue.create_order(order("flip", side=Side.SELL, quantity="0.02", reduce_only=True))
    closed = await venue.create_order(
        order("close", side=Side.SELL, quantity="0.01", reduce_only=True)
    )
    assert closed.status is ExecutionStatus.FILLED
    assert await venue.positions() == []


async def test_canceling_a_resting_order_releases_its_quote() -> None:
    venue = paper(feed=SettablePrices(BTC_USDT="60000"))
    await venue.create_order(order(quantity="1", limit="50000"))

    canceled = await venue.cancel_order("o-1", BTC)

    assert canceled.status is ExecutionStatus.CANCELED
    assert await venue.open_orders() == []
    assert balance_of(await venue.balances(), "USDT") == (Decimal(100_000), Decimal(100_000))


async def test_canceling_a_filled_order_reports_it_filled() -> None:
    venue = paper()
    filled = await venue.create_order(order())

    assert await venue.cancel_order("o-1", BTC) == filled


async def test_an_order_the_venue_never_saw_is_not_found() -> None:
    venue = paper()
    await venue.create_order(order("o-1"))

    with pytest.raises(OrderNotFound):
        await venue.fetch_order("o-2", BTC)
    with pytest.raises(OrderNotFound):
        await venue.fetch_order("o-1", ETH)


async def test_a_timed_out_create_still_leaves_the_order_to_be_found() -> None:
    clock = ManualClock()
    config = PaperVenueConfig(timeout_probability=Decimal(1))
    venue = PaperVenue(config, clock, 3)

    with pytest.raises(VenueTimeout):
        await venue.create_order(order("o-1"))

    # The venue answers again: the lookup by client order id finds the order, and the retry of
    # the create gets that same order back instead of a second one.
    answering = PaperVenue(PaperVenueConfig(), clock, 3, state=venue.snapshot())
    found = await answering.fetch_order("o-1", BTC)
    assert found.status is ExecutionStatus.FILLED
    assert await answering.create_order(order("o-1")) == found


async def test_faults_aimed_at_creation_leave_lookups_answering() -> None:
    config = PaperVenueConfig(
        timeout_probability=Decimal(1),
        failure_probability=Decimal(0),
        fault_calls=frozenset({"create_order"}),
    )
    venue = paper(config)

    with pytest.raises(VenueTimeout):
        await venue.create_order(order("o-1"))

    assert (await venue.fetch_order("o-1", BTC)).status is ExecutionStatus.FILLED
    assert await venue.open_orders() == []


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32))
def test_whatever_the_draws_a_timed_out_create_can_be_looked_up(seed: int) -> None:
    async def scenario() -> None:
        config = PaperVenueConfig(timeout_probability=Decimal("0.5"))
        venue = PaperVenue(config, ManualClock(), seed)
        for attempt in range(40):
            try:
                await venue.create_order(order(f"o-{attempt}"))
            except VenueTimeout:
                timed_out = f"o-{attempt}"
                break
        else:
            raise AssertionError("not one of 40 creates timed out at a probability of one half")
        for _ in range(40):
            try:
                found = await venue.fetch_order(timed_out, BTC)
            except VenueTimeout:
                continue
            assert found.status is ExecutionStatus.FILLED
            return
        pytest.fail("the order was never found")

    asyncio.run(scenario())


async def test_an_unavailable_venue_does_not_create_the_order() -> None:
    venue = paper(PaperVenueConfig(failure_probability=Decimal(1)))

    with pytest.raises(VenueUnavailable):
        await venue.create_order(order("o-1"))

    assert venue.snapshot().orders == ()


async def test_an_injected_rejection_books_nothing() -> None:
    venue = paper(PaperVenueConfig(rejection_probability=Decimal(1)))

    with pytest.raises(OrderRejected, match="injected"):
        await venue.create_order(order("o-1"))

    assert venue.snapshot().orders == ()


async def test_finished_orders_beyond_the_limit_are_forgotten_oldest_first() -> None:
    venue = paper(PaperVenueConfig(max_closed_orders=2), feed=SettablePrices(BTC_USDT="60000"))
    await venue.create_order(order("resting", limit="50000"))
    for n in range(3):
        await venue.create_order(order(f"done-{n}"))

    kept = [o.spec.order_id for o in venue.snapshot().orders]
    assert kept == ["resting", "done-1", "done-2"]
    with pytest.raises(OrderNotFound):
        await venue.fetch_order("done-0", BTC)


async def test_the_books_of_a_busy_account_stay_small_enough_to_save_after_every_change() -> None:
    venue = paper(feed=SettablePrices(BTC_USDT="60000"))
    for n in range(2_000):
        await venue.create_order(order(f"o-{n}", side=Side.BUY if n % 2 else Side.SELL))

    assert len(json.dumps(venue.snapshot().to_dict())) < 1_000_000


async def test_the_books_survive_a_restart_through_a_json_snapshot() -> None:
    clock = ManualClock()
    venue = paper(clock=clock)
    await venue.create_order(order("bought", quantity="0.02"))
    await venue.create_order(order("sold", symbol=ETH, side=Side.SELL, quantity="0.5"))
    await venue.create_order(order("resting", quantity="0.01", limit="30000"))
    await venue.create_order(order("canceled", symbol=ETH, quantity="0.1", limit="1000"))
    await venue.cancel_order("canceled", ETH)

    saved = json.dumps(venue.snapshot().to_dict())
    assert '"USDT": "' in saved  # decimals travel as strings
    restored = PaperVenue(
        PaperVenueConfig(), clock, 7, state=PaperVenueState.from_dict(json.loads(saved))
    )

    assert restored.snapshot() == venue.snapshot()
    for read in ("balances", "positions", "open_orders"):
        assert await getattr(restored, read)() == await getattr(venue, read)()
    assert await restored.recent_fills(START) == await venue.recent_fills(START)
    assert restored.price(BTC, clock.now) == venue.price(BTC, clock.now)
    following = await restored.create_order(order("after-restart"))
    assert following.venue_order_id == "paper-5"


async def test_a_snapshot_with_open_orders_in_a_dropped_market_is_refused() -> None:
    venue = paper(feed=SettablePrices(BTC_USDT="60000"))
    await venue.create_order(order("resting", limit="50000"))
    only_eth = PaperVenueConfig(markets={ETH: PaperVenueConfig().markets[ETH]})

    with pytest.raises(ValueError, match="no longer configured"):
        PaperVenue(only_eth, ManualClock(), 7, state=venue.snapshot())


trades = st.lists(
    st.tuples(
        st.sampled_from([BTC, ETH, "SOL/USDT"]),
        st.sampled_from([Side.BUY, Side.SELL]),
        st.integers(min_value=1, max_value=400),
        st.integers(min_value=0, max_value=3_600),
    ),
    max_size=20,
)
_STEPS = {BTC: Decimal("0.0001"), ETH: Decimal("0.001"), "SOL/USDT": Decimal("0.01")}


@settings(max_examples=60, deadline=None)
@given(trades=trades, seed=st.integers(min_value=0, max_value=1_000))
def test_positions_and_cash_are_the_signed_sums_of_the_fills(
    trades: list[tuple[str, Side, int, int]], seed: int
) -> None:
    async def scenario() -> None:
        clock = ManualClock()
        venue = paper(seed=seed, clock=clock)
        for n, (symbol, side, steps, wait) in enumerate(trades):
            clock.advance(wait)
            try:
                await venue.create_order(
                    order(f"o-{n}", symbol=symbol, side=side, quantity=str(steps * _STEPS[symbol]))
                )
            except (InvalidOrder, InsufficientFunds):
                continue

        fills = await venue.recent_fills(START)
        expected: dict[str, Decimal] = {}
        cash = Decimal(100_000)
        for venue_fill in fills:
            sign = venue_fill.side.sign
            fill = venue_fill.fill
            expected[venue_fill.symbol] = expected.get(venue_fill.symbol, Decimal(0)) + (
                sign * fill.quantity
            )
            cash -= sign * fill.quantity * fill.price + fill.fee
        positions = {p.symbol: p.quantity for p in await venue.positions()}
        assert positions == {symbol: q for symbol, q in expected.items() if q != 0}
        assert balance_of(await venue.balances(), "USDT")[0] == cash
        assert len({f.fill.fill_id for f in fills}) == len(fills)

    asyncio.run(scenario())
