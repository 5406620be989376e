"""Risk decisions, trading state, run-time limits and the risk audit."""

from typing import Any

from pydantic import Field

from ordo.contracts.enums import TradingState
from ordo.contracts.envelope import Contract, Message
from ordo.contracts.orders import OrderSpec
from ordo.contracts.signals import Name
from ordo.contracts.types import Decimal_, UtcDatetime


class DenialReason(Contract):
    """Why a proposal was denied, in a form machines and people can both read."""

    code: str = Field(description="Machine-readable, e.g. MAX_NOTIONAL_PER_ORDER")
    message: str
    order_id: str | None = None
    limit: Decimal_ | None = None
    actual: Decimal_ | None = None


class OrderApproved(Message):
    """The risk gate approved a whole proposal; execution places its orders."""

    schema_name = "OrderApproved"

    proposal_id: str
    account: Name
    orders: tuple[OrderSpec, ...] = Field(min_length=1)


class OrderDenied(Message):
    """The risk gate denied a whole proposal."""

    schema_name = "OrderDenied"

    proposal_id: str
    account: Name
    order_ids: tuple[str, ...]
    reasons: tuple[DenialReason, ...] = Field(min_length=1)


class TradingStateChanged(Message):
    """An account's trading state changed (operator command or automatic halt)."""

    schema_name = "TradingStateChanged"

    account: Name
    state: TradingState
    previous: TradingState
    reason: str = Field(max_length=1000)
    actor: str = Field(max_length=200, description="The operator, or the service that switched it")


class SetTradingState(Message):
    """Operator command: halt, reduce or resume an account. Audited by the risk service."""

    schema_name = "SetTradingState"

    account: Name
    state: TradingState
    reason: str = Field(min_length=1, max_length=1000)
    operator: str = Field(min_length=1, max_length=200)


# -- run-time limits -------------------------------------------------------------------------------

LimitValue = str | int | bool | None
"""A limit as JSON: amounts and percentages as strings (never floats), counts as integers, flags as
booleans, ``None`` for "no limit". The risk service validates it as its ``RiskLimits`` field."""


class SetRiskLimits(Message):
    """Operator command: change some limits of one account, or of the default, at run time.

    The risk service validates the names and values against its limits model, stores them over
    the configured limits (the config file stays the base), audits who, why, before and after, and
    applies them to every decision from then on, on every replica.
    """

    schema_name = "SetRiskLimits"

    account: Name | None = Field(default=None, description="None: the default of every account")
    changes: dict[Name, LimitValue] = Field(
        default_factory=dict, description="Limit name → its new value; null lifts the limit"
    )
    reset: tuple[Name, ...] = Field(
        default=(), description="Limits whose run-time value is dropped: the configured one applies"
    )
    reason: str = Field(min_length=1, max_length=1000)
    operator: str = Field(min_length=1, max_length=200)


class QueryRiskLimits(Message):
    """Which limits an account trades under now, and where each comes from."""

    schema_name = "QueryRiskLimits"

    account: Name | None = Field(default=None, description="None: the default")


class RiskLimitsView(Message):
    schema_name = "RiskLimitsView"

    account: Name | None
    effective: dict[str, LimitValue] = Field(description="What the checks apply")
    configured: dict[str, LimitValue] = Field(description="From the config file alone")
    overrides: dict[str, LimitValue] = Field(description="Set at run time, over the config file")
    trading_state: TradingState | None = Field(
        default=None, description="The account's trading state; None for the default"
    )


# -- the audit -------------------------------------------------------------------------------------


class QueryRiskDecisions(Message):
    """Decisions of the risk gate, newest first; every filter given must match."""

    schema_name = "QueryRiskDecisions"

    order_id: str | None = None
    proposal_id: str | None = None
    signal_id: str | None = None
    account: Name | None = None
    since: UtcDatetime | None = None
    until: UtcDatetime | None = None
    limit: int = Field(default=100, ge=1, le=1000)


class RiskDecisionRecord(Contract):
    """One decision with every input it was made from."""

    decision_id: str = Field(description="The message id of the published approval or denial")
    proposal_id: str
    signal_id: str
    correlation_id: str
    account: Name
    approved: bool
    reasons: tuple[DenialReason, ...]
    trading_state: TradingState
    orders: tuple[OrderSpec, ...]
    limits: dict[str, Any] = Field(description="The limits applied (JSON)")
    exposure: dict[str, Any] = Field(description="Positions and reservations decided on (JSON)")
    inputs: dict[str, Any] = Field(
        default_factory=dict,
        description="The rest decided on: quotes, equity, the day, the order rate (JSON)",
    )
    decided_at: UtcDatetime


class RiskDecisionsView(Message):
    schema_name = "RiskDecisionsView"

    decisions: tuple[RiskDecisionRecord, ...]


class QueryRiskAudit(Message):
    """Trading-state and limit changes (and refused requests), newest first."""

    schema_name = "QueryRiskAudit"

    account: Name | None = Field(default=None, description="Also matches changes of the default")
    since: UtcDatetime | None = None
    until: UtcDatetime | None = None
    limit: int = Field(default=100, ge=1, le=1000)


class TradingStateRecord(Contract):
    account: Name
    from_state: TradingState
    to_state: TradingState
    outcome: str = Field(description="applied, unchanged or refused")
    reason: str
    actor: str
    command_id: str | None = Field(description="The message that asked for it")
    at: UtcDatetime


class LimitChangeRecord(Contract):
    account: Name | None = Field(description="None: the default")
    outcome: str = Field(description="applied or refused")
    reason: str
    actor: str
    command_id: str | None
    before: dict[str, LimitValue] = Field(description="The run-time overrides before")
    after: dict[str, LimitValue] = Field(description="The run-time overrides after")
    error: str | None = Field(default=None, description="Why a refused request was refused")
    at: UtcDatetime


class RiskAuditView(Message):
    schema_name = "RiskAuditView"

    state_changes: tuple[TradingStateRecord, ...]
    limit_changes: tuple[LimitChangeRecord, ...]
