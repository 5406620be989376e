"""The execution service's settings, and how venue breakers are named."""

from decimal import Decimal

import pytest
from pydantic import ValidationError

from ordo.execution.config import ExecutionSettings, PaperSettings
from ordo.execution.gateway import breaker_name, parse_breaker_name
from ordo.execution.venues import PaperMarket, PaperVenueConfig


def test_paper_settings_become_the_paper_venue_config() -> None:
    settings = PaperSettings(
        seed=11,
        starting_balance=Decimal(5_000),
        taker_fee_rate=Decimal("0.002"),
        maker_fee_rate=Decimal("0.0004"),
        timeout_probability=Decimal("0.1"),
        fault_calls=frozenset({"create_order"}),
    )

    config = settings.venue_config()

    assert config.markets == PaperVenueConfig().markets
    assert (config.starting_balance, config.taker_fee_rate, config.maker_fee_rate) == (
        Decimal(5_000),
        Decimal("0.002"),
        Decimal("0.0004"),
    )
    assert (config.timeout_probability, config.fault_calls) == (
        Decimal("0.1"),
        frozenset({"create_order"}),
    )


def test_configured_markets_replace_the_defaults() -> None:
    doge = PaperMarket(
        start_price=Decimal("0.1"),
        tick_size=Decimal("0.0001"),
        step_size=Decimal(1),
        min_quantity=Decimal(1),
        min_notional=Decimal(5),
    )

    config = PaperSettings(markets={"DOGE/USDT": doge}).venue_config()

    assert list(config.markets) == ["DOGE/USDT"]


def test_mistakes_in_the_paper_settings_are_refused_at_start_up() -> None:
    with pytest.raises(ValidationError, match="never as floats"):
        PaperSettings.model_validate({"starting_balance": 1000.5})
    with pytest.raises(ValidationError, match="less than or equal to 1"):
        PaperSettings.model_validate({"timeout_probability": "1.5"})
    with pytest.raises(ValidationError, match="fault_calls"):
        PaperSettings.model_validate({"fault_calls": ["market_rules"]})
    with pytest.raises(ValidationError, match="greater than 0"):
        ExecutionSettings(match_interval_seconds=0)


def test_the_config_file_section_is_read() -> None:
    settings = ExecutionSettings()

    assert settings.paper.venue_config().markets == PaperVenueConfig().markets
    assert settings.match_interval_seconds > 0


@pytest.mark.parametrize(
    ("venue", "account"),
    [("paper", "main"), ("ccxt:binance", "main"), ("ccxt:binance", "desk:eu")],
)
def test_a_venue_breaker_name_gives_back_its_venue_and_account(venue: str, account: str) -> None:
    name = breaker_name(venue, account)

    assert parse_breaker_name(name, ["paper", "ccxt:binance"]) == (venue, account)


def test_breakers_of_other_dependencies_are_not_venues() -> None:
    assert parse_breaker_name("nats", ["paper"]) is None
    assert parse_breaker_name("channel:webhook", ["paper"]) is None
