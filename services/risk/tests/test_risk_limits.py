from decimal import Decimal

import pytest
from pydantic import ValidationError

from ordo.risk.config import RiskSettings
from ordo.risk.domain.limits import AccountLimits, RiskLimits


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
