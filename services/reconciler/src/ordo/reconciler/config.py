"""The reconciler's settings: which accounts to reconcile, how often, what difference matters."""

from typing import ClassVar

from pydantic import Field, field_validator

from ordo.contracts.signals import Name
from ordo.kit.settings import Section, ServiceSettings
from ordo.reconciler.domain.compare import Tolerances


class ReconcileTarget(Section):
    """One account at one venue, compared on every run."""

    account: Name
    venue: Name


class ReconcilerSettings(ServiceSettings):
    service_name: ClassVar[str] = "reconciler"

    interval_seconds: float = Field(default=30.0, gt=0, description="Time between two runs")
    accounts: tuple[ReconcileTarget, ...] = Field(
        default=(ReconcileTarget(account="main", venue="paper"),), min_length=1
    )
    # No default: what counts as a critical mismatch (which halts an account) is a limit, and
    # limits are configured, never guessed in code.
    tolerances: Tolerances
    request_timeout_seconds: float = Field(
        default=5.0, gt=0, description="How long to wait for execution's and the OMS's answers"
    )
    retention_days: float = Field(
        default=30.0, gt=0, description="Runs and their discrepancies older than this are pruned"
    )

    @field_validator("accounts", mode="after")
    @classmethod
    def _each_target_once(cls, value: tuple[ReconcileTarget, ...]) -> tuple[ReconcileTarget, ...]:
        seen: set[tuple[str, str]] = set()
        repeated = []
        for target in value:
            key = (target.account, target.venue)
            if key in seen:
                repeated.append(f"{target.account}/{target.venue}")
            seen.add(key)
        if repeated:
            raise ValueError(f"each account and venue is listed once (repeated: {repeated})")
        return value
