"""The paper venue as a market: slippage, book levels, partial fills, market impact, latency,
native stops and trailing stops, reduce-only orders re-checked when they fill, recorded prices,
and repeatability by seed."""

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from paper_support import BTC, START, ManualClock, SettablePrices, order

from ordo.contracts.enums import ExecutionStatus, OrderType, Side, TimeInForce
from ordo.execution.errors import InvalidOrder, OrderRejected
from ordo.execution.venues import PaperMarket, PaperVenue, PaperVenueConfig, VenueOrder
from ordo.execution.venues.paper_config import (
    MarketImpact,
    RecordedPrices,
    Slippage,
    SlippageModel,
)

# A fine tick, so that the slippage of a test order is exact rather than rounded.
FINE = PaperMarket(
    start_price=Decimal(10_000),
    tick_size=Decimal("0.0001"),
    step_size=Decimal("0.01"),
    min_quantity=Decimal("0.01"),
    min_notional=Decimal(1),
    depth=Decimal(1_000_000),
)


def venue(
    *,
    market: PaperMarket = FINE,
    feed: SettablePrices | None = None,
    clock: ManualClock | None = None,
    seed: int = 7,
    **config: object,
) -> PaperVenue:
    settings = PaperVenueConfig.model_validate(
        {"markets": {BTC: market}, "starting_balance": Decimal(1_000_000), **config}
    )
    return PaperVenue(
        settings, clock or ManualClock(), seed, feed=feed or SettablePrices(BTC_USDT="10000")
    )


def slipped(placed: VenueOrder, reference: Decimal = Decimal(10_000)) -> Decimal:
    """How much worse than the reference the order was filled, as a fraction of it."""
    assert placed.average_price is not None
    return abs(placed.average_price - reference) / reference


@pytest.mark.parametrize(
    ("model", "larger_over_smaller"),
    [
        (SlippageModel.FIXED, Decimal(1)),
        (SlippageModel.LINEAR, Decimal(4)),
        (SlippageModel.SQUARE_ROOT, Decimal(2)),
    ],
)
async def test_each_slippage_model_grows_with_size_in_its_own_shape(
    model: SlippageModel, larger_over_smaller: Decimal
) -> None:
    paper = venue(slippage=Slippage(model=model, rate=Decimal("0.01")))

    small = await paper.create_order(order("small", quantity="1"))  # 10,000: 1% of the depth
    large = await paper.create_order(order("large", quantity="4"))

    assert slipped(small) > 0
    assert slipped(large) / slipped(small) == larger_over_smaller


async def test_slippage_works_against_the_taker_on_both_sides() -> None:
    paper = venue(slippage=Slippage(model=SlippageModel.LINEAR, rate=Decimal("0.01")))

    bought = await paper.create_order(order("buy", quantity="1"))
    sold = await paper.create_order(order("sell", side=Side.SELL, quantity="1"))

    assert (bought.average_price, sold.average_price) == (Decimal("10001"), Decimal("9999"))


async def test_a_taker_order_walks_the_book_in_partial_fills_that_sum_to_the_order() -> None:
    market = FINE.model_copy(update={"level_quantity": Decimal("0.3")})
    paper = venue(market=market, slippage=Slippage(model=SlippageModel.LINEAR, rate=Decimal("0.5")))

    placed = await paper.create_order(order(quantity="1"))

    assert placed.status is ExecutionStatus.FILLED
    assert [fill.quantity for fill in placed.fills] == [Decimal("0.3")] * 3 + [Decimal("0.1")]
    assert sum(fill.quantity for fill in placed.fills) == placed.quantity == Decimal(1)
    prices = [fill.price for fill in placed.fills]
    assert prices == sorted(prices) and prices[0] < prices[-1]  # each level is worse
    notional = sum(fill.quantity * fill.price for fill in placed.fills)
    assert placed.average_price == notional / placed.quantity
    assert len({fill.fill_id for fill in placed.fills}) == 4


async def test_a_marketable_limit_takes_the_levels_within_its_limit_and_rests_the_rest() -> None:
    market = FINE.model_copy(
        update={"level_quantity": Decimal("0.5"), "maker_quantity_per_second": Decimal("0.1")}
    )
    clock = ManualClock()
    paper = venue(
        market=market,
        clock=clock,
        slippage=Slippage(model=SlippageModel.LINEAR, rate=Decimal("0.5")),
    )

    # Level one costs 10,025 (0.5 x 10,000 is 0.5% of the depth, times the rate); two 10,050.
    placed = await paper.create_order(order(quantity="1.5", limit="10030"))

    assert placed.status is ExecutionStatus.PARTIALLY_FILLED
    assert [(f.quantity, f.price) for f in placed.fills] == [(Decimal("0.5"), Decimal(10_025))]
    assert await paper.open_orders() == [placed]
    # The book refills: the rest fills at the limit, as maker, at the makers' pace.
    clock.advance(10)
    (done,) = paper.match(clock.now)
    assert done.status is ExecutionStatus.FILLED
    assert [(f.quantity, f.price, f.liquidity) for f in done.fills[1:]] == [
        (Decimal(1), Decimal(10_030), "maker")
    ]


async def test_a_fok_limit_that_cannot_fill_whole_within_its_limit_expires_unfilled() -> None:
    market = FINE.model_copy(update={"level_quantity": Decimal("0.5")})
    paper = venue(market=market, slippage=Slippage(model=SlippageModel.LINEAR, rate=Decimal("0.5")))

    placed = await paper.create_order(
        order(quantity="1.5", limit="10030", time_in_force=TimeInForce.FOK)
    )

    assert (placed.status, placed.fills) == (ExecutionStatus.EXPIRED, ())
    assert await paper.positions() == []


async def test_a_resting_order_fills_at_the_makers_pace_in_parts_that_sum_to_it() -> None:
    market = FINE.model_copy(update={"maker_quantity_per_second": Decimal("0.1")})
    prices, clock = SettablePrices(BTC_USDT="10000"), ManualClock()
    paper = venue(market=market, feed=prices, clock=clock)
    await paper.create_order(order(quantity="0.5", limit="9900"))

    prices.set(BTC, "9890")
    clock.advance(2)
    (first,) = paper.match(clock.now)
    clock.advance(10)
    (second,) = paper.match(clock.now)

    assert (first.status, first.filled_quantity) == (
        ExecutionStatus.PARTIALLY_FILLED,
        Decimal("0.2"),
    )
    assert second.status is ExecutionStatus.FILLED
    assert [fill.quantity for fill in second.fills] == [Decimal("0.2"), Decimal("0.3")]
    assert {(fill.price, fill.liquidity) for fill in second.fills} == {(Decimal(9900), "maker")}


async def test_fees_are_charged_per_fill_at_the_maker_or_taker_rate() -> None:
    prices, clock = SettablePrices(BTC_USDT="10000"), ManualClock()
    paper = venue(
        feed=prices,
        clock=clock,
        taker_fee_rate=Decimal("0.002"),
        maker_fee_rate=Decimal("0.0005"),
    )

    taken = await paper.create_order(order("take", quantity="2"))
    await paper.create_order(order("make", side=Side.SELL, quantity="1", limit="10100"))
    prices.set(BTC, "10150")
    clock.advance(1)
    (made,) = paper.match(clock.now)

    assert [(f.fee, f.liquidity) for f in taken.fills] == [(Decimal("40"), "taker")]
    assert [(f.fee, f.liquidity) for f in made.fills] == [(Decimal("5.05"), "maker")]
    usdt = next(b for b in await paper.balances() if b.currency == "USDT")
    assert usdt.total == Decimal(1_000_000) - Decimal(20_000) - 40 + Decimal(10_100) - Decimal(
        "5.05"
    )


async def test_a_large_trade_moves_the_price_and_the_move_fades_by_half_per_half_life() -> None:
    clock = ManualClock()
    paper = venue(
        clock=clock, impact=MarketImpact(rate=Decimal("0.1"), half_life_seconds=Decimal(60))
    )

    await paper.create_order(order(quantity="10"))  # 100,000: a tenth of the depth

    assert paper.price(BTC, clock.now) == Decimal(10_100)  # moved up by 1%
    assert paper.price(BTC, clock.now + timedelta(seconds=60)) == Decimal(10_050)
    later = await paper.create_order(order("later", side=Side.SELL, quantity="1"))
    assert later.average_price == Decimal(10_100)


async def test_an_order_reaches_the_book_after_a_latency_within_the_bounds() -> None:
    clock = ManualClock()
    paper = venue(clock=clock, latency_min_ms=20, latency_max_ms=250)

    placed = [await paper.create_order(order(f"o-{n}")) for n in range(20)]

    delays = {fill.filled_at - START for o in placed for fill in o.fills}
    assert len(delays) > 1
    assert all(timedelta(milliseconds=20) <= d <= timedelta(milliseconds=250) for d in delays)


async def test_a_stop_market_order_triggers_when_the_price_reaches_its_stop() -> None:
    prices, clock = SettablePrices(BTC_USDT="10000"), ManualClock()
    paper = venue(feed=prices, clock=clock)
    await paper.create_order(order("long", quantity="1"))
    stop = order(
        "stop",
        side=Side.SELL,
        quantity="1",
        order_type=OrderType.STOP_MARKET,
        stop_price=Decimal(9_500),
        reduce_only=True,
    )

    resting = await paper.create_order(stop)
    prices.set(BTC, "9600")
    clock.advance(1)
    assert paper.match(clock.now) == []
    prices.set(BTC, "9480")
    clock.advance(1)
    (triggered,) = paper.match(clock.now)

    assert (resting.status, resting.fills) == (ExecutionStatus.ACCEPTED, ())
    assert triggered.status is ExecutionStatus.FILLED
    assert [(f.price, f.liquidity) for f in triggered.fills] == [(Decimal(9_480), "taker")]
    assert await paper.positions() == []


async def test_a_triggered_stop_limit_rests_at_its_limit_until_the_price_comes_back() -> None:
    prices, clock = SettablePrices(BTC_USDT="10000"), ManualClock()
    paper = venue(feed=prices, clock=clock)
    stop_limit = order(
        "breakout",
        quantity="1",
        order_type=OrderType.STOP_LIMIT,
        stop_price=Decimal(10_200),
        limit_price=Decimal(10_250),
    )
    await paper.create_order(stop_limit)

    prices.set(BTC, "10300")  # through the stop, and beyond the limit: it rests
    clock.advance(1)
    (triggered,) = paper.match(clock.now)
    prices.set(BTC, "10240")
    clock.advance(1)
    (filled,) = paper.match(clock.now)

    assert (triggered.status, triggered.fills) == (ExecutionStatus.TRIGGERED, ())
    assert filled.status is ExecutionStatus.FILLED
    assert [(f.price, f.liquidity) for f in filled.fills] == [(Decimal(10_250), "maker")]


async def test_a_trailing_stop_follows_the_best_price_and_triggers_on_the_pullback() -> None:
    prices, clock = SettablePrices(BTC_USDT="10000"), ManualClock()
    paper = venue(feed=prices, clock=clock)
    trailing = order(
        "trail",
        side=Side.SELL,
        quantity="1",
        order_type=OrderType.TRAILING_STOP,
        trailing_percent=Decimal(2),
    )
    await paper.create_order(trailing)

    for price in ("10500", "11000", "10800"):  # the stop climbs to 10,780 and stays there
        prices.set(BTC, price)
        clock.advance(1)
        paper.match(clock.now)
    assert (await paper.fetch_order("trail", BTC)).status is ExecutionStatus.ACCEPTED
    prices.set(BTC, "10770")
    clock.advance(1)
    paper.match(clock.now)

    done = await paper.fetch_order("trail", BTC)
    assert done.status is ExecutionStatus.FILLED
    assert done.average_price == Decimal(10_770)


async def test_a_trailing_stop_needs_one_distance() -> None:
    paper = venue()

    with pytest.raises(InvalidOrder, match="trailing_amount or a trailing_percent"):
        await paper.create_order(order(order_type=OrderType.TRAILING_STOP))


async def test_a_stop_already_reached_on_arrival_triggers_at_once() -> None:
    paper = venue()
    stop = order(quantity="1", order_type=OrderType.STOP_MARKET, stop_price=Decimal(9_000))

    placed = await paper.create_order(stop)

    assert placed.status is ExecutionStatus.FILLED


async def test_a_resting_reduce_only_order_never_grows_the_position_when_it_fills() -> None:
    prices, clock = SettablePrices(BTC_USDT="10000"), ManualClock()
    paper = venue(feed=prices, clock=clock)
    await paper.create_order(order("long", quantity="0.05"))
    take_profit = order("tp", side=Side.SELL, quantity="0.05", limit="10500", reduce_only=True)
    await paper.create_order(take_profit)
    await paper.create_order(order("partial-exit", side=Side.SELL, quantity="0.03"))

    prices.set(BTC, "10600")
    clock.advance(1)
    (tp,) = paper.match(clock.now)

    assert tp.status is ExecutionStatus.CANCELED
    assert tp.filled_quantity == Decimal("0.02")
    assert tp.reason == "reduce-only order would no longer reduce the position"
    assert await paper.positions() == []


async def test_an_unprotected_post_only_or_injected_rejection_books_nothing() -> None:
    paper = venue(rejection_probability=Decimal(1))

    with pytest.raises(OrderRejected, match="injected"):
        await paper.create_order(order(quantity="1"))
    assert paper.snapshot().orders == ()


async def test_the_same_seed_and_call_times_give_the_same_fills() -> None:
    async def session(seed: int) -> list[tuple[str, object]]:
        clock = ManualClock()
        market = FINE.model_copy(
            update={"level_quantity": Decimal("0.2"), "maker_quantity_per_second": Decimal("0.05")}
        )
        paper = PaperVenue(
            PaperVenueConfig(
                markets={BTC: market},
                starting_balance=Decimal(1_000_000),
                slippage=Slippage(model=SlippageModel.SQUARE_ROOT, rate=Decimal("0.002")),
                impact=MarketImpact(rate=Decimal("0.01")),
                latency_min_ms=5,
                latency_max_ms=400,
                rejection_probability=Decimal("0.2"),
                volatility=Decimal("0.001"),
            ),
            clock,
            seed,
        )
        outcome: list[tuple[str, object]] = []
        for n in range(12):
            clock.advance(7)
            side = Side.BUY if n % 3 else Side.SELL
            limit = None if n % 2 else str(paper.price(BTC, clock.now))
            try:
                placed = await paper.create_order(
                    order(f"o-{n}", side=side, quantity="0.7", limit=limit)
                )
            except OrderRejected as rejected:
                outcome.append(("rejected", str(rejected)))
                continue
            outcome.append(("placed", placed))
            outcome.extend(("matched", changed) for changed in paper.match(clock.now))
        return outcome

    first, again, other = await session(11), await session(11), await session(12)

    assert first == again
    assert any(kind == "rejected" for kind, _ in first)
    assert first != other


def write_bars(path: Path, *rows: str) -> Path:
    path.write_text("timestamp,open,high,low,close,volume\n" + "\n".join(rows) + "\n")
    return path


async def test_recorded_bars_are_replayed_at_the_chosen_speed(tmp_path: Path) -> None:
    bars = write_bars(
        tmp_path / "btc.csv",
        "1735732800000,10000,10600,9700,10300,12.5",  # 2025-01-01 12:00, rising
        "2025-01-01T12:01:00Z,10300,10400,9900,10000,8",  # falling
    )
    clock = ManualClock()
    paper = PaperVenue(
        PaperVenueConfig(
            markets={BTC: FINE},
            prices=RecordedPrices(files={BTC: bars}, speed=Decimal(20)),
            feed_origin=START,
        ),
        clock,
        7,
    )

    # At 20 x, a minute's bar lasts three seconds: open, low, high and close a second apart.
    path = [paper.price(BTC, START + timedelta(seconds=s)) for s in [*range(7), 15]]

    assert path == [10_000, 9_700, 10_600, 10_300, 10_400, 9_900, 10_000, 10_000]


async def test_a_resting_order_fills_when_the_recording_passes_its_limit(tmp_path: Path) -> None:
    bars = write_bars(tmp_path / "btc.csv", "1735732800000,10000,10600,9700,10300,1")
    clock = ManualClock()
    paper = PaperVenue(
        PaperVenueConfig(
            markets={BTC: FINE}, prices=RecordedPrices(files={BTC: bars}), feed_origin=START
        ),
        clock,
        7,
    )
    await paper.create_order(order(quantity="1", limit="9800"))

    clock.advance(20)  # a third of the way into the minute: at the bar's low

    (filled,) = paper.match(clock.now)
    assert filled.status is ExecutionStatus.FILLED
    assert filled.average_price == Decimal(9_800)


def test_a_recording_with_a_bad_row_is_refused_with_its_line(tmp_path: Path) -> None:
    bars = write_bars(tmp_path / "btc.csv", "1735732800000,10000,9000,9700,10300,1")

    with pytest.raises(ValueError, match=r"line 2: prices must be positive, low ≤ open"):
        PaperVenue(
            PaperVenueConfig(markets={BTC: FINE}, prices=RecordedPrices(files={BTC: bars})),
            ManualClock(),
            7,
        )


def test_a_recording_must_cover_every_market(tmp_path: Path) -> None:
    bars = write_bars(tmp_path / "btc.csv", "1735732800000,10000,10600,9700,10300,1")

    with pytest.raises(ValueError, match="no OHLCV file for ETH/USDT"):
        PaperVenueConfig(
            markets={BTC: FINE, "ETH/USDT": FINE}, prices=RecordedPrices(files={BTC: bars})
        )


async def test_a_resting_buy_stop_holds_back_what_it_may_pay_until_canceled() -> None:
    paper = venue(taker_fee_rate=Decimal("0.001"), starting_balance=Decimal(100_000))
    stop = order(quantity="2", order_type=OrderType.STOP_MARKET, stop_price=Decimal(10_500))

    await paper.create_order(stop)

    usdt = next(b for b in await paper.balances() if b.currency == "USDT")
    assert usdt.total - usdt.free == Decimal(2) * Decimal(10_500) * Decimal("1.001")
    await paper.cancel_order("o-1", BTC)
    usdt = next(b for b in await paper.balances() if b.currency == "USDT")
    assert usdt.free == usdt.total
