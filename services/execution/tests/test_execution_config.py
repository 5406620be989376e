"""The execution service's settings, venue accounts and credentials, and breaker names."""

from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from ordo.execution.config import CcxtAccount, ExecutionSettings, PaperSettings, VenueMode
from ordo.execution.gateway import breaker_name, parse_breaker_name
from ordo.execution.venues import PaperMarket, PaperVenueConfig
from ordo.execution.venues.credentials import MissingCredentials, read_credentials


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


def ccxt_account(**fields: object) -> CcxtAccount:
    return CcxtAccount.model_validate({"account": "main", "venue": "ccxt:binance", **fields})


def test_a_ccxt_account_is_a_sandbox_account_unless_it_says_live() -> None:
    entry = ccxt_account()

    assert (entry.mode, entry.exchange_id, entry.credentials_name) == (
        VenueMode.SANDBOX,
        "binance",
        "BINANCE_MAIN",
    )
    assert ccxt_account(account="desk-eu", credentials="binance_eu").credentials_name == (
        "BINANCE_EU"
    )


def test_mistakes_in_the_venue_accounts_are_refused_at_start_up() -> None:
    with pytest.raises(ValidationError, match="the paper venue serves every account"):
        ccxt_account(venue="paper")
    with pytest.raises(ValidationError, match="lower case, as ccxt spells it"):
        ccxt_account(venue="ccxt:Binance")
    with pytest.raises(ValidationError, match="listed twice"):
        ExecutionSettings(venue_accounts=(ccxt_account(), ccxt_account(mode="live")))
    with pytest.raises(ValidationError, match="credentials"):
        ccxt_account(credentials="binance main")


def test_credentials_come_from_the_environment_or_from_files(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("s3cret\n")
    environ = {
        "ORDO_VENUE_BINANCE_MAIN_API_KEY": "key",
        "ORDO_VENUE_BINANCE_MAIN_SECRET_FILE": str(secret_file),
    }

    credentials = read_credentials("BINANCE_MAIN", environ)

    assert credentials.ccxt_config() == {"apiKey": "key", "secret": "s3cret"}
    assert "key" not in repr(credentials) and "s3cret" not in repr(credentials)


def test_missing_or_doubled_credentials_stop_the_start_with_the_variable_to_set(
    tmp_path: Path,
) -> None:
    with pytest.raises(MissingCredentials, match="ORDO_VENUE_KRAKEN_MAIN_SECRET"):
        read_credentials("KRAKEN_MAIN", {"ORDO_VENUE_KRAKEN_MAIN_API_KEY": "key"})
    with pytest.raises(MissingCredentials, match="not both"):
        read_credentials(
            "KRAKEN_MAIN",
            {
                "ORDO_VENUE_KRAKEN_MAIN_API_KEY": "key",
                "ORDO_VENUE_KRAKEN_MAIN_API_KEY_FILE": str(tmp_path / "key"),
            },
        )
    with pytest.raises(MissingCredentials, match="cannot read"):
        read_credentials(
            "KRAKEN_MAIN",
            {
                "ORDO_VENUE_KRAKEN_MAIN_API_KEY": "key",
                "ORDO_VENUE_KRAKEN_MAIN_SECRET_FILE": str(tmp_path / "missing"),
            },
        )
