"""Turning a parsed TradingView alert into a normalised signal request."""

from decimal import Decimal

import pytest

from ordo.contracts.enums import Intent, SizeUnit
from ordo.contracts.signals import Size
from ordo.signal.domain.errors import AlertError, UnknownSymbol, UnmappableIntent
from ordo.signal.domain.tradingview import (
    TradingViewAlert,
    alert_venue,
    parse_alert,
    to_signal_request,
)

MARKETS = {"BTC/USDT", "ETH/USDT", "BTC/USDT:USDT"}


def alert(**changes: object) -> TradingViewAlert:
    fields: dict[str, object] = {
        "ticker": "BINANCE:BTCUSDT",
        "action": "buy",
        "contracts": "0.5",
        "market_position": "long",
        "prev_market_position": "flat",
        "close": "42000.5",
        "account": "main",
        "strategy": "trend",
    }
    fields.update(changes)
    return TradingViewAlert.model_validate({k: v for k, v in fields.items() if v is not None})


def test_entry_alert_becomes_a_sized_signal_on_the_default_venue() -> None:
    request = to_signal_request(alert(comment="golden cross"), MARKETS, "binance")

    assert request.account == "main"
    assert request.strategy == "trend"
    assert request.venue == "binance"
    assert request.symbol == "BTC/USDT"
    assert request.intent is Intent.ENTER_LONG
    assert request.size == Size(unit=SizeUnit.QUANTITY, value=Decimal("0.5"))
    assert request.reference_price == Decimal("42000.5")
    assert request.stop_price is None
    assert request.comment == "golden cross"


def test_alert_venue_overrides_the_default() -> None:
    tagged = alert(venue="bybit")

    assert alert_venue(tagged, "binance") == "bybit"
    assert to_signal_request(tagged, MARKETS, "binance").venue == "bybit"


def test_realistic_perpetual_short_entry() -> None:
    body = (
        b'{"ticker": "BTCUSDT.P", "exchange": "BINANCE", "action": "sell", "contracts": 0.012,'
        b' "position_size": -0.012, "market_position": "short", "prev_market_position": "flat",'
        b' "order_id": "Short", "close": 42123.5, "timenow": "2024-01-15T10:30:00Z",'
        b' "account": "main", "strategy": "trend"}'
    )

    request = to_signal_request(parse_alert(body, "application/json"), MARKETS, "binance")

    assert request.symbol == "BTC/USDT:USDT"
    assert request.intent is Intent.ENTER_SHORT
    assert request.size == Size(unit=SizeUnit.QUANTITY, value=Decimal("0.012"))


def test_exit_to_flat_closes_what_is_open_whatever_tradingview_counted() -> None:
    exit_alert = alert(action="sell", market_position="flat", prev_market_position="long")

    request = to_signal_request(exit_alert, MARKETS, "binance")

    assert request.intent is Intent.EXIT_LONG
    assert request.size is None


def test_exit_may_omit_contracts() -> None:
    exit_alert = alert(
        action="buy", market_position="flat", prev_market_position=None, contracts=None
    )

    assert to_signal_request(exit_alert, MARKETS, "binance").intent is Intent.EXIT_SHORT


def test_entry_without_contracts_is_refused() -> None:
    with pytest.raises(AlertError) as caught:
        to_signal_request(alert(contracts=None), MARKETS, "binance")

    assert caught.value.field == "contracts"


def test_size_unit_is_carried_into_the_size() -> None:
    request = to_signal_request(alert(contracts="2.5", size_unit="percent_equity"), MARKETS, "x")

    assert request.size == Size(unit=SizeUnit.PERCENT_EQUITY, value=Decimal("2.5"))


def test_risk_sizing_carries_the_stop() -> None:
    request = to_signal_request(alert(size_unit="risk", contracts="50", stop="41000"), MARKETS, "x")

    assert request.size == Size(unit=SizeUnit.RISK, value=Decimal("50"))
    assert request.stop_price == Decimal("41000")


def test_risk_sizing_without_a_stop_is_refused() -> None:
    with pytest.raises(AlertError) as caught:
        to_signal_request(alert(size_unit="risk", contracts="50"), MARKETS, "x")

    assert caught.value.field == "stop"


def test_reverse_in_quantity_is_sized_by_the_new_position_not_the_order() -> None:
    # The buy of 3 closed a short of 1 and opened a long of 2.
    reverse = alert(contracts="3", position_size="2", prev_market_position="short")

    request = to_signal_request(reverse, MARKETS, "x")

    assert request.intent is Intent.REVERSE
    assert request.size == Size(unit=SizeUnit.QUANTITY, value=Decimal("2"))


def test_reverse_in_quantity_without_position_size_is_refused() -> None:
    reverse = alert(contracts="3", prev_market_position="short")

    with pytest.raises(AlertError) as caught:
        to_signal_request(reverse, MARKETS, "x")

    assert caught.value.field == "position_size"


def test_reverse_in_quote_uses_the_senders_amount() -> None:
    reverse = alert(contracts="250", size_unit="quote", prev_market_position="short")

    request = to_signal_request(reverse, MARKETS, "x")

    assert request.size == Size(unit=SizeUnit.QUOTE, value=Decimal("250"))


def test_unknown_ticker_is_refused_as_the_ticker_field() -> None:
    with pytest.raises(UnknownSymbol) as caught:
        to_signal_request(alert(ticker="DOGEUSDT"), MARKETS, "binance")

    assert caught.value.field == "ticker"


def test_senseless_action_is_refused() -> None:
    with pytest.raises(UnmappableIntent):
        to_signal_request(alert(market_position="short"), MARKETS, "binance")
