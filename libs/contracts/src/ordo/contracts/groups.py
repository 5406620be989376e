"""Position groups and the execution pool's waiting queue, as the OMS answers queries about them."""

from pydantic import Field

from ordo.contracts.enums import (
    GroupOrderRole,
    GroupStatus,
    OrderStatus,
    OrderType,
    Side,
    TakeProfitMode,
    TradingState,
)
from ordo.contracts.envelope import Contract, Message
from ordo.contracts.signals import Name
from ordo.contracts.types import Decimal_, Price, Quantity, UtcDatetime


class GroupLegView(Contract):
    """One order of a group: an entry, a DCA level, a take-profit, the stop-loss or a close."""

    order_id: str
    role: GroupOrderRole
    side: Side
    order_type: OrderType
    quantity: Quantity
    limit_price: Price | None = None
    stop_price: Price | None = None
    status: OrderStatus
    filled_quantity: Quantity
    parent_order_id: str | None = Field(
        default=None, description="For a per-leg take-profit: the entry it takes profit on"
    )


class GroupView(Contract):
    """One strategy's position in one symbol on one account, with its orders."""

    group_id: str
    account: Name
    strategy: Name
    venue: Name
    symbol: Name
    side: Side = Field(description="The direction of the group's entries")
    status: GroupStatus
    signal_id: str = Field(description="The entry signal that opened the group")
    quantity: Decimal_ = Field(description="The open quantity, signed (short < 0)")
    average_entry: Price | None = None
    pyramids: int = Field(ge=0)
    max_pyramids: int = Field(ge=0)
    take_profit_mode: TakeProfitMode | None = None
    legs: tuple[GroupLegView, ...] = ()
    reason: str | None = Field(default=None, description="Why it closed or waits, when it says")
    created_at: UtcDatetime
    updated_at: UtcDatetime
    closed_at: UtcDatetime | None = None


class QueryGroups(Message):
    schema_name = "QueryGroups"

    account: Name | None = None
    status: GroupStatus | None = None
    symbol: Name | None = None
    limit: int = Field(default=100, ge=1, le=1000)


class GroupsView(Message):
    schema_name = "GroupsView"

    groups: tuple[GroupView, ...]


class QueueEntryView(Contract):
    """A group waiting for a pool slot, in the order the pool would release it."""

    rank: int = Field(ge=1, description="1 is released next")
    group_id: str
    signal_id: str
    account: Name
    strategy: Name
    venue: Name
    symbol: Name
    side: Side
    tier: int = Field(
        ge=1,
        le=4,
        description="1 continuation of a live group's symbol, 2 deepest loss of the symbol, "
        "3 replacement of the group just closed, 4 first in, first out",
    )
    why: str
    loss_percent: Decimal_ | None = Field(
        default=None, description="How far the symbol moved against the entry since its signal"
    )
    enqueued_at: UtcDatetime


class PoolView(Contract):
    """One account's execution pool: the slots its live groups hold."""

    account: Name
    open_groups: int = Field(ge=0, description="Live and closing groups: each holds a slot")
    max_open_groups: int = Field(ge=1)
    waiting: int = Field(ge=0)
    trading_state: TradingState = Field(
        default=TradingState.ACTIVE,
        description="The account's trading state as the OMS last heard it from the risk service",
    )


class QueryQueue(Message):
    schema_name = "QueryQueue"

    account: Name | None = None


class QueueView(Message):
    schema_name = "QueueView"

    pools: tuple[PoolView, ...]
    entries: tuple[QueueEntryView, ...]
