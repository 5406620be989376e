"""Market quotes: the paper venue's, published on NATS JetStream with ids that make repeats drop.

(The ccxt account's quotes, read from the ticker of the local Binance test venue, are tested with
the rest of the ccxt path in ``test_execution_ccxt_venue``.)
"""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import nats
import pytest

from ordo.contracts.market import MarketQuote
from ordo.contracts.subjects import STREAM_OF_SUBJECT, Subject
from ordo.execution import store
from ordo.execution.app import ExecutionApp, assemble
from ordo.execution.config import ExecutionSettings, PaperSettings
from ordo.execution.quotes import paper_quote, quote_message_id
from ordo.execution.venues.paper import PaperPrices, PaperVenue, PaperVenueConfig
from ordo.kit.embedded import NatsServer
from ordo.kit.settings import NatsSettings
from ordo.kit.testing import eventually

ORIGIN = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
PAPER_SYMBOLS = {"BTC/USDT", "ETH/USDT", "SOL/USDT"}


class ManualClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_a_quote_id_names_venue_symbol_and_time_and_nothing_else() -> None:
    at = datetime(2025, 1, 1, 12, 0, 1, tzinfo=UTC)
    same = quote_message_id("paper", "BTC/USDT", at)

    assert quote_message_id("paper", "BTC/USDT", at.astimezone(tz=None)) == same  # any offset
    others = {
        quote_message_id("paper", "ETH/USDT", at),
        quote_message_id("ccxt:binance", "BTC/USDT", at),
        quote_message_id("paper", "BTC/USDT", at + timedelta(milliseconds=1)),
    }
    assert same not in others and len(others) == 3
    assert len(same) <= 64  # fits the inbox's message id column of every consumer


def test_a_paper_quote_is_the_feeds_price_for_the_whole_second_it_holds() -> None:
    config = PaperVenueConfig(feed_origin=ORIGIN, volatility=Decimal("0.001"))
    prices = PaperPrices(config, 7, ManualClock(ORIGIN))
    at = ORIGIN + timedelta(seconds=42, microseconds=730_000)

    quote = paper_quote(prices, "BTC/USDT", at)

    assert quote.quoted_at == ORIGIN + timedelta(seconds=42)
    assert quote.last == quote.bid == quote.ask == prices.price("BTC/USDT", at)
    # Another replica with the same feed quotes the same price under the same id.
    again = paper_quote(PaperPrices(config, 7, ManualClock(at)), "BTC/USDT", at)
    assert again == quote


def test_new_paper_accounts_trade_at_the_prices_the_quotes_show() -> None:
    clock = ManualClock(ORIGIN)
    config = PaperVenueConfig(volatility=Decimal("0.001"))
    # The oldest saved books set the origin: the prices accounts already trade at.
    prices = PaperPrices(config, 7, clock, lambda: [ORIGIN - timedelta(hours=1), ORIGIN])
    clock.now = ORIGIN + timedelta(minutes=5)

    venue = PaperVenue(config.model_copy(update={"feed_origin": prices.origin}), clock, 7)

    assert prices.origin == ORIGIN - timedelta(hours=1)
    for symbol in PAPER_SYMBOLS:
        assert venue.price(symbol, clock.now) == paper_quote(prices, symbol, clock.now).last


@pytest.fixture
async def service(tmp_path: Path, own_nats: NatsServer) -> AsyncIterator[ExecutionApp]:
    admin = own_nats.credentials.admin
    settings = ExecutionSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'execution.db'}",
        nats=NatsSettings(url=own_nats.url, user=admin.name, password=admin.password),
        paper=PaperSettings(feed_origin=ORIGIN, volatility=Decimal("0.001")),
        quote_interval_seconds=0.1,
    )
    # The clock stands still: every round quotes the same second, under the same ids.
    app = assemble(settings, telemetry=False, clock=ManualClock(ORIGIN + timedelta(seconds=90)))
    await app.kit.db.create_all(store.metadata)
    await app.kit.start(migrate=False, serve_http=False)
    yield app
    await app.kit.stop()


async def test_quotes_arrive_on_nats_with_decimal_prices_and_utc_times_and_repeats_drop(
    service: ExecutionApp, own_nats: NatsServer
) -> None:
    admin = own_nats.credentials.admin
    client = await nats.connect(own_nats.url, user=admin.name, password=admin.password)
    try:
        js = client.jetstream()
        stream = STREAM_OF_SUBJECT[Subject.MARKET_QUOTE]

        async def three_quotes() -> Any:
            info = await js.stream_info(stream)
            return info if info.state.messages >= 3 else None

        await eventually(three_quotes, timeout=20, what="a quote of each paper market")
        # More rounds, same second: JetStream drops every repeat by its id.
        await service.quotes.publish_quotes()
        await service.quotes.publish_quotes()
        assert (await js.stream_info(stream)).state.messages == 3

        quotes = []
        for sequence in (1, 2, 3):
            raw = await js.get_msg(stream, sequence)
            quote = MarketQuote.from_json(raw.data or b"")
            assert (raw.headers or {})["Nats-Msg-Id"] == quote.message_id
            quotes.append(quote)
    finally:
        await client.drain()

    config = PaperVenueConfig(feed_origin=ORIGIN, volatility=Decimal("0.001"))
    expected = PaperPrices(config, 7, ManualClock(ORIGIN))
    quoted_at = ORIGIN + timedelta(seconds=90)
    assert {quote.symbol for quote in quotes} == PAPER_SYMBOLS
    for quote in quotes:
        assert (quote.venue, quote.quoted_at, quote.quoted_at.tzinfo) == ("paper", quoted_at, UTC)
        assert isinstance(quote.last, Decimal)
        assert quote.last == quote.bid == quote.ask == expected.price(quote.symbol, quoted_at)
        assert quote.message_id == quote_message_id("paper", quote.symbol, quoted_at)
