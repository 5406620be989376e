"""Risk limits per account: a default, and per-account overrides of individual limits."""

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, field_validator

from ordo.contracts.signals import Name
from ordo.contracts.types import Decimal_


class RiskLimits(BaseModel):
    """The limits one account trades under. ``None`` means that limit is not set.

    Notional limits are in the quote currency; ``max_position_*`` bound the absolute net position
    per account and symbol, counting open orders that the risk gate already approved.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_notional_per_order: Decimal_ | None = None
    max_position_notional: Decimal_ | None = None
    max_position_quantity: Decimal_ | None = None
    max_open_positions: int | None = None

    @field_validator(
        "max_notional_per_order", "max_position_notional", "max_position_quantity", mode="after"
    )
    @classmethod
    def _decimal_limit_is_positive(cls, value: Decimal | None) -> Decimal | None:
        # Zero would silently deny every order; an account that must not trade is HALTED instead.
        if value is not None and value <= 0:
            raise ValueError(f"must be greater than zero, or left unset for no limit (got {value})")
        return value

    @field_validator("max_open_positions", mode="before")
    @classmethod
    def _count_is_a_whole_number(cls, value: object) -> object:
        # A bool is an int to Python, and "2.5 positions" is a typo, not a limit.
        if isinstance(value, bool | float):
            raise ValueError(f"must be a whole number (got {value!r})")
        return value

    @field_validator("max_open_positions", mode="after")
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


class AccountLimits(BaseModel):
    """The default limits and the accounts that override some of them.

    ``default`` is required: without it every account left out of ``accounts`` (a new one, a
    misspelt one) would trade with no limit at all.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    default: RiskLimits
    accounts: dict[Name, RiskLimits] = {}

    def limits_for(self, account: str) -> RiskLimits:
        override = self.accounts.get(account)
        if override is None:
            return self.default
        return self.default.overridden_by(override)
