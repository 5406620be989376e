"""The risk service's settings: the limits each account trades under.

The limits come from the ``risk.limits`` section of the config file (a ``default`` and per-account
overrides in ``accounts``) and are validated at start-up: a typo, a float, a zero or a negative
limit stops the service with a message that names the field.
"""

from typing import Any, ClassVar

from pydantic import Field, model_validator

from ordo.kit.settings import ServiceSettings
from ordo.risk.domain.limits import AccountLimits


class RiskSettings(ServiceSettings):
    service_name: ClassVar[str] = "risk"

    limits: AccountLimits
    # The decisions also recognise a proposal sent again, so they outlive any redelivery (the
    # streams keep a message for a week) by a wide margin.
    audit_retention_days: float = Field(
        default=365.0,
        ge=30,
        description="Decisions and trading-state changes older than this are pruned",
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
