"""Risk limits: a default, per-account overrides, and per-strategy overrides of per-order limits."""

from decimal import Decimal
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from ordo.contracts.signals import Name
from ordo.contracts.types import Decimal_

HUNDRED = Decimal(100)


class RiskLimits(BaseModel):
    """The limits one account trades under. ``None`` (or ``False``) means that limit is not set.

    Notional limits are in the quote currency; ``max_position_*`` bound the absolute net position
    per account and symbol, counting open orders that the risk gate already approved. Percentages
    are numbers of percent (``"5"`` is 5 %). Equity is ``starting_capital`` plus the realised and
    unrealised P&L of the account's positions, so every limit measured against equity needs it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    # -- per order ---------------------------------------------------------------------------
    max_notional_per_order: Decimal_ | None = None
    # -- per position (net, per venue and symbol) ------------------------------------------------
    max_position_notional: Decimal_ | None = None
    max_position_quantity: Decimal_ | None = None
    max_position_percent_of_equity: Decimal_ | None = None
    max_open_positions: int | None = None
    # -- the whole account -------------------------------------------------------------------
    starting_capital: Decimal_ | None = None
    max_gross_exposure: Decimal_ | None = None
    max_leverage: Decimal_ | None = None
    max_symbol_concentration_percent: Decimal_ | None = None
    # Below this gross exposure the concentration limit does not apply: an account's first
    # position is always 100 % of its gross exposure.
    concentration_min_gross_exposure: Decimal_ | None = None
    max_daily_traded_notional: Decimal_ | None = None
    max_daily_realised_loss: Decimal_ | None = None
    max_drawdown_percent: Decimal_ | None = None
    # -- order rate (sliding window) ---------------------------------------------------------
    order_rate_window_seconds: int | None = None
    max_orders_per_account: int | None = None
    max_orders_per_strategy: int | None = None
    # -- prices ------------------------------------------------------------------------------
    price_collar_percent: Decimal_ | None = None
    quote_max_age_seconds: Decimal_ | None = None
    max_quote_spread_percent: Decimal_ | None = None
    require_stop_loss: bool = False

    # The limits that a strategy may set for its own orders; the rest belong to the account.
    PER_STRATEGY: ClassVar[frozenset[str]] = frozenset(
        {
            "max_notional_per_order",
            "max_orders_per_strategy",
            "price_collar_percent",
            "require_stop_loss",
        }
    )

    @field_validator(
        "max_notional_per_order",
        "max_position_notional",
        "max_position_quantity",
        "max_position_percent_of_equity",
        "starting_capital",
        "max_gross_exposure",
        "max_leverage",
        "max_daily_traded_notional",
        "max_daily_realised_loss",
        "quote_max_age_seconds",
        mode="after",
    )
    @classmethod
    def _decimal_limit_is_positive(cls, value: Decimal | None) -> Decimal | None:
        # Zero would silently deny every order; an account that must not trade is HALTED instead.
        if value is not None and value <= 0:
            raise ValueError(f"must be greater than zero, or left unset for no limit (got {value})")
        return value

    @field_validator(
        "max_symbol_concentration_percent",
        "max_drawdown_percent",
        "price_collar_percent",
        "max_quote_spread_percent",
        mode="after",
    )
    @classmethod
    def _percent_is_in_range(cls, value: Decimal | None) -> Decimal | None:
        if value is not None and not 0 < value <= HUNDRED:
            raise ValueError(
                f"is a percentage: more than 0 and at most 100, or left unset (got {value})"
            )
        return value

    @field_validator(
        "concentration_min_gross_exposure",
        mode="after",
    )
    @classmethod
    def _amount_is_not_negative(cls, value: Decimal | None) -> Decimal | None:
        if value is not None and value < 0:
            raise ValueError(f"must be zero or more, or left unset (got {value})")
        return value

    @field_validator(
        "max_open_positions",
        "order_rate_window_seconds",
        "max_orders_per_account",
        "max_orders_per_strategy",
        mode="before",
    )
    @classmethod
    def _count_is_a_whole_number(cls, value: object) -> object:
        # A bool is an int to Python, and "2.5 positions" is a typo, not a limit.
        if isinstance(value, bool | float):
            raise ValueError(f"must be a whole number (got {value!r})")
        return value

    @field_validator(
        "max_open_positions",
        "order_rate_window_seconds",
        "max_orders_per_account",
        "max_orders_per_strategy",
        mode="after",
    )
    @classmethod
    def _count_is_positive(cls, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise ValueError(f"must be at least 1, or left unset for no limit (got {value})")
        return value

    def overridden_by(self, override: "RiskLimits") -> "RiskLimits":
        """These limits with every field that ``override`` sets explicitly replaced.

        A field the override leaves out keeps this value; a field it sets to ``None`` explicitly
        lifts that limit for the account.
        """
        changes = {name: getattr(override, name) for name in override.model_fields_set}
        return self.model_copy(update=changes)

    def missing_companions(self) -> list[str]:
        """Limits that are set without the setting they are measured against."""
        problems = []
        needs_equity = ("max_position_percent_of_equity", "max_leverage", "max_drawdown_percent")
        for name in needs_equity:
            if getattr(self, name) is not None and self.starting_capital is None:
                problems.append(f"{name} is measured against equity: it needs starting_capital")
        rate_limits = ("max_orders_per_account", "max_orders_per_strategy")
        for name in rate_limits:
            if getattr(self, name) is not None and self.order_rate_window_seconds is None:
                problems.append(
                    f"{name} counts orders in a window: it needs order_rate_window_seconds"
                )
        if self.quote_max_age_seconds is None:
            # Each values positions at their marks: a stopped feed must not price them for ever.
            marked = [name for name in _VALUED_AT_MARKS if getattr(self, name) is not None]
            problems += [
                f"{name} needs quote_max_age_seconds: without it, a quote of any age would be "
                f"trusted"
                for name in marked
            ]
        return problems


# The limits that read the last trusted quotes: the collar, and those that value held positions.
_VALUED_AT_MARKS = (
    "price_collar_percent",
    "max_position_percent_of_equity",
    "max_gross_exposure",
    "max_leverage",
    "max_symbol_concentration_percent",
    "max_drawdown_percent",
)


class AccountLimits(BaseModel):
    """The default limits, the accounts that override some of them, and per-strategy overrides.

    ``default`` is required: without it every account left out of ``accounts`` (a new one, a
    misspelt one) would trade with no limit at all. ``strategies`` override the per-order limits
    (:attr:`RiskLimits.PER_STRATEGY`) for that strategy's orders on every account; the account-wide
    limits (exposure, equity, daily loss) cannot be split by strategy.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    default: RiskLimits
    accounts: dict[Name, RiskLimits] = {}
    strategies: dict[Name, RiskLimits] = {}

    @field_validator("strategies", mode="after")
    @classmethod
    def _strategies_set_only_per_order_limits(
        cls, value: dict[str, RiskLimits]
    ) -> dict[str, RiskLimits]:
        for strategy, limits in value.items():
            account_wide = sorted(limits.model_fields_set - RiskLimits.PER_STRATEGY)
            if account_wide:
                raise ValueError(
                    f"strategy {strategy!r} sets {', '.join(account_wide)}, which apply to the "
                    f"whole account; a strategy may only set "
                    f"{', '.join(sorted(RiskLimits.PER_STRATEGY))}"
                )
        return value

    @model_validator(mode="after")
    def _every_account_is_complete(self) -> "AccountLimits":
        problems = self._incomplete("default", "the default", self.default)
        for account in self.accounts:
            name = f"accounts.{account}"
            problems += self._incomplete(name, name, self.limits_for(account))
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _incomplete(self, label: str, scope: str, limits: RiskLimits) -> list[str]:
        """What ``limits`` lack, and what each strategy's limits on them lack besides.

        A strategy's limit is measured by its account's settings (the rate window, the maximum
        quote age): without them it would be defined and never enforced.
        """
        own = limits.missing_companions()
        problems = [f"{label}: {problem}" for problem in own]
        for strategy, override in self.strategies.items():
            merged = limits.overridden_by(override).missing_companions()
            problems += [f"strategies.{strategy} on {scope}: {p}" for p in merged if p not in own]
        return problems

    def limits_for(self, account: str) -> RiskLimits:
        override = self.accounts.get(account)
        if override is None:
            return self.default
        return self.default.overridden_by(override)

    def strategy_limits_for(self, account: str) -> dict[str, RiskLimits]:
        """The account's limits as each strategy with overrides sees them, by strategy."""
        base = self.limits_for(account)
        return {name: base.overridden_by(o) for name, o in self.strategies.items()}
