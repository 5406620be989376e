"""The paper venue's configuration: sensible defaults, and clear refusals of mistakes."""

from decimal import Decimal

import pytest
from pydantic import ValidationError

from ordo.execution.venues import MarketRules, PaperVenueConfig


def test_the_defaults_trade_three_usdt_markets_from_one_hundred_thousand() -> None:
    config = PaperVenueConfig()

    assert {symbol: m.start_price for symbol, m in config.markets.items()} == {
        "BTC/USDT": Decimal(60_000),
        "ETH/USDT": Decimal(3_000),
        "SOL/USDT": Decimal(150),
    }
    assert config.markets["ETH/USDT"].rules == MarketRules(
        tick_size=Decimal("0.01"),
        step_size=Decimal("0.001"),
        min_quantity=Decimal("0.001"),
        min_notional=Decimal(5),
    )
    assert (config.starting_balance, config.quote_currency) == (Decimal(100_000), "USDT")
    assert config.taker_fee_rate == Decimal("0.001")
    assert config.rejection_probability == config.failure_probability == 0


def test_a_market_that_is_not_a_unified_symbol_is_refused() -> None:
    market = PaperVenueConfig().markets["BTC/USDT"]

    with pytest.raises(ValidationError, match="not a unified symbol"):
        PaperVenueConfig(markets={"BTCUSDT": market})


def test_money_given_as_a_float_is_refused() -> None:
    with pytest.raises(ValidationError, match="never as floats"):
        PaperVenueConfig.model_validate({"starting_balance": 100.5})


def test_a_probability_above_one_is_refused() -> None:
    with pytest.raises(ValidationError, match="less than or equal to 1"):
        PaperVenueConfig(timeout_probability=Decimal("1.5"))
