"""The risk service's settings: the limits each account trades under.

The limits come from the ``risk.limits`` section of the config file (a ``default``, per-account
overrides in ``accounts`` and per-strategy overrides of the per-order limits in ``strategies``) and
are validated at start-up: a typo, a float, a zero or negative limit, a percentage outside 0-100,
a count that is not a whole positive number, or a limit without what it is measured against (an
equity limit without ``starting_capital``, a rate without its window, the collar, a limit valued
at the marks or the enabled loser/winner offset without a maximum quote age) stops the service
with a message that names the field and the account.
"""

from typing import Any, ClassVar

from pydantic import Field, model_validator

from ordo.kit.settings import ServiceSettings
from ordo.risk.domain.limits import AccountLimits
from ordo.risk.domain.offset import OffsetSettings


class RiskSettings(ServiceSettings):
    service_name: ClassVar[str] = "risk"

    limits: AccountLimits
    offset: OffsetSettings = Field(
        default_factory=OffsetSettings, description="The loser/winner offset (off by default)"
    )
    # The decisions also recognise a proposal sent again, so they outlive any redelivery (the
    # streams keep a message for a week) by a wide margin.
    audit_retention_days: float = Field(
        default=365.0,
        ge=30,
        description="Decisions and trading-state changes older than this are pruned",
    )
    position_sync_seconds: float = Field(
        default=10.0,
        gt=0,
        description="How long start-up waits for the OMS's positions before starting without",
    )

    @model_validator(mode="before")
    @classmethod
    def _limits_are_configured(cls, values: Any) -> Any:
        # A risk gate with no limits configured would approve anything: refuse to start instead.
        if isinstance(values, dict) and values.get("limits") is None:
            raise ValueError(
                "risk.limits is not configured: set risk.limits.default (and optionally "
                "risk.limits.accounts.<account>) in the config file, or ORDO_LIMITS__DEFAULT__... "
                "in the environment"
            )
        return values

    @model_validator(mode="after")
    def _offset_marks_have_a_maximum_age(self) -> "RiskSettings":
        # The offset closes positions at their marks: a quote of any age would let a stopped feed
        # close a loser (and winners) at prices long gone.
        if not self.offset.enabled:
            return self
        scopes = {"default": self.limits.default}
        scopes |= {f"accounts.{a}": self.limits.limits_for(a) for a in self.limits.accounts}
        missing = [name for name, limits in scopes.items() if limits.quote_max_age_seconds is None]
        if missing:
            raise ValueError(
                "; ".join(
                    f"{name}: the offset needs quote_max_age_seconds (risk.offset is enabled)"
                    for name in missing
                )
            )
        return self
