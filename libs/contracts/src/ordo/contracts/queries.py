"""Request/reply queries answered by the OMS (reconciler and operator CLI)."""

from pydantic import Field

from ordo.contracts.enums import Intent, OrderStatus, SignalOutcome
from ordo.contracts.envelope import Contract, Message
from ordo.contracts.orders import OrderView, PositionView, TargetWeight
from ordo.contracts.signals import Name
from ordo.contracts.types import Decimal_, Money, UtcDatetime


class QueryOrders(Message):
    schema_name = "QueryOrders"

    account: Name | None = None
    order_id: str | None = None
    signal_id: str | None = None
    status: OrderStatus | None = None
    limit: int = Field(default=100, ge=1, le=1000)
    strategy: Name | None = None
    symbol: Name | None = None
    open_only: bool = Field(default=False, description="Only orders that are not finished")


class OrdersView(Message):
    schema_name = "OrdersView"

    orders: tuple[OrderView, ...]


class QueryPositions(Message):
    schema_name = "QueryPositions"

    account: Name | None = None
    venue: Name | None = None
    include_flat: bool = False
    strategy: Name | None = None


class PnlTotals(Contract):
    """P&L summed over positions: per account (``strategy`` None) or per account + strategy."""

    account: Name
    strategy: Name | None = None
    realised_pnl: Money = Field(description="After fees")
    unrealised_pnl: Money = Field(description="Over the positions with a mark")
    fees: Money
    unmarked_positions: int = Field(
        default=0, ge=0, description="Open positions without a mark, left out of unrealised P&L"
    )


class PositionsView(Message):
    schema_name = "PositionsView"

    positions: tuple[PositionView, ...]
    totals: tuple[PnlTotals, ...] = Field(
        default=(), description="Per account, then per account and strategy"
    )


class QuerySignals(Message):
    """What the OMS made of accepted signals: planned, queued, or why they made no order."""

    schema_name = "QuerySignals"

    signal_id: str | None = None
    account: Name | None = None
    outcome: SignalOutcome | None = None
    # A reply stays well under NATS's 1 MB payload; page further back with ``after_signal_id``.
    limit: int = Field(default=100, ge=1, le=2000)
    after_signal_id: str | None = Field(
        default=None, description="The next page: the outcomes listed after this signal's"
    )


class SignalOutcomeView(Contract):
    signal_id: str
    outcome: SignalOutcome
    reason: str | None = Field(
        default=None, description="Why unplannable, refused, queued, dequeued or denied"
    )
    account: Name
    strategy: Name
    venue: Name
    symbol: Name
    intent: Intent
    proposal_id: str | None = None
    recorded_at: UtcDatetime


class SignalsView(Message):
    schema_name = "SignalsView"

    signals: tuple[SignalOutcomeView, ...]


class QueryRebalances(Message):
    """Rebalances and how far each got (selling, buying, done, refused with why)."""

    schema_name = "QueryRebalances"

    rebalance_id: str | None = None
    account: Name | None = None
    limit: int = Field(default=20, ge=1, le=1000)


class RebalanceView(Contract):
    rebalance_id: str
    phase: str = Field(description="selling, buying, done or refused")
    account: Name
    strategy: Name
    venue: Name
    reserve: Decimal_
    targets: tuple[TargetWeight, ...]
    detail: str | None = Field(default=None, description="Why refused, or the trades skipped")
    created_at: UtcDatetime
    updated_at: UtcDatetime


class RebalancesView(Message):
    schema_name = "RebalancesView"

    rebalances: tuple[RebalanceView, ...]
