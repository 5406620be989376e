"""Normalising TradingView tickers to the venue's unified symbols."""

import pytest

from ordo.signal.domain.errors import UnknownSymbol
from ordo.signal.domain.symbols import normalise_symbol

MARKETS = {"BTC/USDT", "ETH/USDT", "BTC/USDT:USDT", "ETH/BTC", "1000PEPE/USDT:USDT"}


@pytest.mark.parametrize(
    ("ticker", "symbol"),
    [
        ("BTCUSDT", "BTC/USDT"),
        ("BINANCE:BTCUSDT", "BTC/USDT"),
        ("BTC/USDT", "BTC/USDT"),
        ("btcusdt", "BTC/USDT"),
        (" ETHBTC ", "ETH/BTC"),
        ("BTCUSDT.P", "BTC/USDT:USDT"),
        ("BINANCE:BTCUSDT.P", "BTC/USDT:USDT"),
        ("BTC/USDT:USDT", "BTC/USDT:USDT"),
        ("BYBIT:BTC/USDT:USDT", "BTC/USDT:USDT"),
    ],
)
def test_ticker_forms_normalise_to_unified_symbol(ticker: str, symbol: str) -> None:
    assert normalise_symbol(ticker, MARKETS) == symbol


def test_plain_ticker_falls_back_to_the_perpetual_on_a_futures_only_venue() -> None:
    assert normalise_symbol("1000PEPEUSDT", MARKETS) == "1000PEPE/USDT:USDT"


def test_linear_perpetual_is_preferred_over_inverse() -> None:
    markets = {"BTC/USD:BTC", "BTC/USD:USD"}

    assert normalise_symbol("BTCUSD.P", markets) == "BTC/USD:USD"


def test_dated_futures_are_not_mistaken_for_perpetuals() -> None:
    with pytest.raises(UnknownSymbol):
        normalise_symbol("BTCUSDT.P", {"BTC/USDT:USDT-241227"})


def test_perpetual_ticker_does_not_fall_back_to_spot() -> None:
    with pytest.raises(UnknownSymbol):
        normalise_symbol("ETHUSDT.P", MARKETS)


def test_unknown_ticker_is_refused_by_name() -> None:
    with pytest.raises(UnknownSymbol) as caught:
        normalise_symbol("BINANCE:DOGEUSDT", MARKETS)

    assert caught.value.symbol == "BINANCE:DOGEUSDT"
    assert "DOGEUSDT" in caught.value.reason


def test_ticker_matching_two_markets_is_refused_as_ambiguous() -> None:
    markets = {"AB/CD", "ABC/D"}

    with pytest.raises(UnknownSymbol) as caught:
        normalise_symbol("ABCD", markets)

    assert "ambiguous" in caught.value.reason


def test_empty_ticker_is_refused() -> None:
    with pytest.raises(UnknownSymbol):
        normalise_symbol("  ", MARKETS)
