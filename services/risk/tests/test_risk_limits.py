from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from ordo.risk.config import RiskSettings
from ordo.risk.domain.limits import AccountLimits, RiskLimits

REPO = Path(__file__).resolve().parents[3]


def test_unset_limits_mean_no_limit() -> None:
    limits = RiskLimits()

    assert limits.max_notional_per_order is None
    assert limits.max_position_notional is None
    assert limits.max_position_quantity is None
    assert limits.max_open_positions is None


def test_limits_are_read_from_strings_as_exact_decimals() -> None:
    limits = RiskLimits.model_validate(
        {"max_notional_per_order": "1000.10", "max_open_positions": 3}
    )

    assert limits.max_notional_per_order == Decimal("1000.10")
    assert limits.max_open_positions == 3


@pytest.mark.parametrize(
    "field", ["max_notional_per_order", "max_position_notional", "max_position_quantity"]
)
@pytest.mark.parametrize("value", ["0", "-1", "-0.01"])
def test_a_limit_of_zero_or_less_is_refused_with_the_field_named(field: str, value: str) -> None:
    with pytest.raises(ValidationError, match=f"{field}[\\s\\S]*must be greater than zero"):
        RiskLimits.model_validate({field: value})


def test_a_float_limit_is_refused_because_it_is_not_exact() -> None:
    with pytest.raises(ValidationError, match="never as floats"):
        RiskLimits.model_validate({"max_notional_per_order": 0.1})


@pytest.mark.parametrize("value", ["NaN", "Infinity"])
def test_a_limit_that_is_not_a_finite_number_is_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="max_position_quantity"):
        RiskLimits.model_validate({"max_position_quantity": value})


@pytest.mark.parametrize("value", [0, -2])
def test_max_open_positions_must_be_at_least_one(value: int) -> None:
    with pytest.raises(ValidationError, match="must be at least 1"):
        RiskLimits(max_open_positions=value)


@pytest.mark.parametrize("value", [2.5, True])
def test_max_open_positions_must_be_a_whole_number(value: object) -> None:
    with pytest.raises(ValidationError, match="must be a whole number"):
        RiskLimits.model_validate({"max_open_positions": value})


def test_a_misspelt_limit_is_refused_rather_than_ignored() -> None:
    with pytest.raises(ValidationError, match="max_notional_per_ordr"):
        RiskLimits.model_validate({"max_notional_per_ordr": "100"})


def test_limits_are_frozen() -> None:
    limits = RiskLimits(max_open_positions=2)

    with pytest.raises(ValidationError):
        limits.max_open_positions = 5


def test_an_account_without_overrides_gets_the_default() -> None:
    config = AccountLimits(default=RiskLimits(max_open_positions=5))

    assert config.limits_for("anyone") == RiskLimits(max_open_positions=5)


def test_an_override_replaces_only_the_limits_it_sets() -> None:
    config = AccountLimits.model_validate(
        {
            "default": {"max_notional_per_order": "1000", "max_open_positions": 5},
            "accounts": {"small": {"max_open_positions": 1}},
        }
    )

    limits = config.limits_for("small")

    assert limits.max_open_positions == 1
    assert limits.max_notional_per_order == Decimal("1000")


def test_an_override_set_to_none_lifts_that_limit_for_the_account() -> None:
    config = AccountLimits.model_validate(
        {
            "default": {"max_notional_per_order": "1000"},
            "accounts": {"desk": {"max_notional_per_order": None}},
        }
    )

    assert config.limits_for("desk").max_notional_per_order is None
    assert config.limits_for("other").max_notional_per_order == Decimal("1000")


def test_an_invalid_override_is_reported_with_its_account() -> None:
    with pytest.raises(ValidationError, match=r"accounts\.small\.max_position_quantity"):
        AccountLimits.model_validate(
            {"default": {}, "accounts": {"small": {"max_position_quantity": "-1"}}}
        )


def test_overrides_without_default_limits_are_refused() -> None:
    # Every account not listed would otherwise trade with no limit at all.
    with pytest.raises(ValidationError, match=r"default\s+Field required"):
        AccountLimits.model_validate({"accounts": {"small": {"max_open_positions": 1}}})


def test_the_service_refuses_to_start_with_limits_that_name_no_default() -> None:
    with pytest.raises(ValidationError, match=r"limits\.default\s+Field required"):
        RiskSettings(limits={})


# -- the checks added for every pre-trade limit ---------------------------------------------------


@pytest.mark.parametrize(
    "field",
    [
        "max_symbol_concentration_percent",
        "max_drawdown_percent",
        "price_collar_percent",
        "max_quote_spread_percent",
    ],
)
@pytest.mark.parametrize("value", ["0", "-5", "100.01"])
def test_a_percentage_outside_0_to_100_is_refused_with_the_field_named(
    field: str, value: str
) -> None:
    with pytest.raises(ValidationError, match=f"{field}[\\s\\S]*is a percentage"):
        RiskLimits.model_validate({field: value})


def test_a_percentage_of_exactly_100_is_a_limit() -> None:
    assert RiskLimits.model_validate({"max_drawdown_percent": "100"}).max_drawdown_percent == 100


@pytest.mark.parametrize(
    "field", ["order_rate_window_seconds", "max_orders_per_account", "max_orders_per_strategy"]
)
@pytest.mark.parametrize(("value", "message"), [(0, "at least 1"), (1.5, "whole number")])
def test_counts_are_whole_and_positive(field: str, value: object, message: str) -> None:
    with pytest.raises(ValidationError, match=f"{field}[\\s\\S]*{message}"):
        RiskLimits.model_validate({field: value})


@pytest.mark.parametrize(
    "field",
    ["starting_capital", "max_gross_exposure", "max_leverage", "max_daily_realised_loss"],
)
def test_amounts_must_be_above_zero(field: str) -> None:
    with pytest.raises(ValidationError, match=f"{field}[\\s\\S]*must be greater than zero"):
        RiskLimits.model_validate({field: "0"})


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"max_leverage": "2"}, "max_leverage is measured against equity: it needs starting"),
        ({"max_drawdown_percent": "10"}, "max_drawdown_percent is measured against equity"),
        ({"max_orders_per_account": 5}, "max_orders_per_account counts orders in a window"),
        ({"price_collar_percent": "5"}, "price_collar_percent needs quote_max_age_seconds"),
        # Each values held positions at their marks: a stopped feed would price them for ever.
        (
            {"starting_capital": "1000", "max_leverage": "2"},
            "max_leverage needs quote_max_age_seconds",
        ),
        ({"max_gross_exposure": "1000"}, "max_gross_exposure needs quote_max_age_seconds"),
        (
            {"max_symbol_concentration_percent": "50"},
            "max_symbol_concentration_percent needs quote_max_age_seconds",
        ),
        (
            {"starting_capital": "1000", "max_position_percent_of_equity": "10"},
            "max_position_percent_of_equity needs quote_max_age_seconds",
        ),
        (
            {"starting_capital": "1000", "max_drawdown_percent": "10"},
            "max_drawdown_percent needs quote_max_age_seconds",
        ),
    ],
)
def test_a_limit_without_what_it_is_measured_against_stops_the_start(
    limits: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=f"default: {message}"):
        AccountLimits.model_validate({"default": limits})


def test_an_account_override_is_checked_with_the_default_it_completes() -> None:
    config = AccountLimits.model_validate(
        {
            "default": {"starting_capital": "1000", "quote_max_age_seconds": "10"},
            "accounts": {"big": {"max_leverage": "3"}},
        }
    )
    assert config.limits_for("big").max_leverage == 3

    with pytest.raises(ValidationError, match=r"accounts\.bare: max_leverage is measured"):
        AccountLimits.model_validate({"default": {}, "accounts": {"bare": {"max_leverage": "3"}}})


def test_a_strategy_overrides_its_own_per_order_limits_on_every_account() -> None:
    config = AccountLimits.model_validate(
        {
            "default": {"max_notional_per_order": "1000"},
            "accounts": {"small": {"max_notional_per_order": "500"}},
            "strategies": {"scalp": {"max_notional_per_order": "100", "require_stop_loss": True}},
        }
    )

    scalp = config.strategy_limits_for("small")["scalp"]
    assert scalp.max_notional_per_order == 100
    assert scalp.require_stop_loss
    assert config.limits_for("small").max_notional_per_order == 500


@pytest.mark.parametrize(
    ("strategy", "message"),
    [
        # Without the account's window the strategy's rate would count one proposal at a time.
        ({"max_orders_per_strategy": 2}, "max_orders_per_strategy counts orders in a window"),
        # Without the account's maximum quote age a quote of any age would set the collar.
        ({"price_collar_percent": "1"}, "price_collar_percent needs quote_max_age_seconds"),
    ],
)
def test_a_strategy_limit_without_what_the_account_measures_it_by_stops_the_start(
    strategy: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=f"strategies.scalp on the default: {message}"):
        AccountLimits.model_validate({"default": {}, "strategies": {"scalp": strategy}})
    with pytest.raises(ValidationError, match=f"strategies.scalp on accounts.bare: {message}"):
        AccountLimits.model_validate(
            {
                "default": {"order_rate_window_seconds": 60, "quote_max_age_seconds": "10"},
                "accounts": {
                    "bare": {"order_rate_window_seconds": None, "quote_max_age_seconds": None}
                },
                "strategies": {"scalp": strategy},
            }
        )


def test_a_strategy_cannot_set_an_account_wide_limit() -> None:
    with pytest.raises(ValidationError, match="strategy 'scalp' sets max_gross_exposure"):
        AccountLimits.model_validate(
            {"default": {}, "strategies": {"scalp": {"max_gross_exposure": "1"}}}
        )


def test_the_configured_limits_are_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    # config/ordo.yaml, as the service reads it at start-up.
    monkeypatch.setenv("ORDO_CONFIG", str(REPO / "config" / "ordo.yaml"))

    settings = RiskSettings()

    assert settings.limits.default.max_notional_per_order is not None
