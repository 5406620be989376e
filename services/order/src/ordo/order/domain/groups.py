"""A position group: one strategy's position in one symbol on one account, and its life.

WAITING (queued for a pool slot) → LIVE → CLOSING (an exit is on its way) → CLOSED; a waiting group
may also be closed straight away (an exit signal removed it from the queue, or its entry could
not be planned when a slot freed). LIVE and CLOSING groups hold a slot of the pool.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from ordo.contracts.enums import GroupStatus, Side
from ordo.order.domain.errors import OrderDomainError

SLOT_HOLDERS = frozenset({GroupStatus.LIVE, GroupStatus.CLOSING})

_NEXT: dict[GroupStatus, frozenset[GroupStatus]] = {
    GroupStatus.WAITING: frozenset({GroupStatus.LIVE, GroupStatus.CLOSED}),
    # A live group with no fill whose entries all failed closes without exiting anything.
    GroupStatus.LIVE: frozenset({GroupStatus.CLOSING, GroupStatus.CLOSED}),
    GroupStatus.CLOSING: frozenset({GroupStatus.CLOSED}),
    GroupStatus.CLOSED: frozenset(),
}


class GroupRefused(OrderDomainError):
    """A signal the group cannot take (a pyramid beyond the limit, an entry on a live group...)."""


class InvalidGroupTransition(OrderDomainError):
    def __init__(self, current: GroupStatus, target: GroupStatus) -> None:
        super().__init__(f"a position group cannot go from {current} to {target}")


@dataclass
class PositionGroup:
    group_id: str
    account: str
    strategy: str
    venue: str
    symbol: str
    side: Side
    status: GroupStatus
    signal_id: str
    created_at: datetime
    updated_at: datetime
    pyramids: int = 0
    stop_price: Decimal | None = None  # the entry signal's own stop, instead of the strategy's
    enqueued_at: datetime | None = None
    closed_at: datetime | None = None
    reason: str | None = None
    queued_signal: str | None = None  # the entry signal (JSON) a waiting group is planned from
    version: int = 1

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.account, self.strategy, self.venue, self.symbol)

    @property
    def is_open(self) -> bool:
        return self.status is not GroupStatus.CLOSED

    def go_live(self, now: datetime) -> None:
        self._move_to(GroupStatus.LIVE, now)
        self.queued_signal = None

    def start_closing(self, reason: str, now: datetime) -> None:
        self._move_to(GroupStatus.CLOSING, now, reason)

    def close(self, reason: str, now: datetime) -> None:
        self._move_to(GroupStatus.CLOSED, now, reason)
        self.closed_at = now
        self.queued_signal = None

    def add_pyramid(self, max_pyramids: int, now: datetime) -> None:
        """Count one more pyramid, or refuse it beyond the strategy's limit."""
        if self.status is not GroupStatus.LIVE:
            raise GroupRefused(
                f"group {self.group_id} in {self.symbol} is {self.status}: a pyramid needs a "
                "live group"
            )
        if self.pyramids >= max_pyramids:
            raise GroupRefused(
                f"group {self.group_id} in {self.symbol} has {self.pyramids} of "
                f"{max_pyramids} pyramids allowed by strategy {self.strategy}"
            )
        self.pyramids += 1
        self._touch(now)

    def claim(self, now: datetime) -> None:
        """Stake a decision on this version of the group (its exits re-placed, its close): of
        two units of work deciding on the same version, one fails its save and runs again."""
        self._touch(now)

    def _move_to(self, target: GroupStatus, now: datetime, reason: str | None = None) -> None:
        if target not in _NEXT[self.status]:
            raise InvalidGroupTransition(self.status, target)
        self.status = target
        if reason is not None:
            self.reason = reason
        self._touch(now)

    def _touch(self, now: datetime) -> None:
        self.updated_at = now
        self.version += 1
