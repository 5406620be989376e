"""Repositories of position groups, account pools and trading states (tables in store.py).

Saves are optimistic, as in store.py: an update names the version it loaded, and a save that
changes no row, or an insert that meets an existing key, raises :class:`ConcurrentUpdate`.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ordo.contracts.enums import (
    GroupOrderRole,
    GroupStatus,
    OrderStatus,
    OrderType,
    Side,
    TradingState,
)
from ordo.kit.store import ConcurrentUpdate
from ordo.order.domain.contingent import GroupLeg
from ordo.order.domain.groups import SLOT_HOLDERS, PositionGroup
from ordo.order.store import (
    AnyRow,
    _changed_rows,
    account_pools,
    group_orders,
    orders,
    position_groups,
    trading_states,
)


def _open_key(group: PositionGroup) -> str | None:
    return "/".join(group.key) if group.is_open else None


def _group_values(group: PositionGroup) -> dict[str, Any]:
    return {
        "account": group.account,
        "strategy": group.strategy,
        "venue": group.venue,
        "symbol": group.symbol,
        "side": group.side.value,
        "status": group.status.value,
        "signal_id": group.signal_id,
        "pyramids": group.pyramids,
        "stop_price": group.stop_price,
        "reason": group.reason,
        "queued_signal": group.queued_signal,
        "open_key": _open_key(group),
        "version": group.version,
        "created_at": group.created_at,
        "updated_at": group.updated_at,
        "enqueued_at": group.enqueued_at,
        "closed_at": group.closed_at,
    }


def group_from(row: AnyRow) -> PositionGroup:
    return PositionGroup(
        group_id=row.group_id,
        account=row.account,
        strategy=row.strategy,
        venue=row.venue,
        symbol=row.symbol,
        side=Side(row.side),
        status=GroupStatus(row.status),
        signal_id=row.signal_id,
        pyramids=row.pyramids,
        stop_price=row.stop_price,
        reason=row.reason,
        queued_signal=row.queued_signal,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        enqueued_at=row.enqueued_at,
        closed_at=row.closed_at,
    )


@dataclass(frozen=True)
class GroupOrder:
    group_id: str
    role: GroupOrderRole
    parent_order_id: str | None


@dataclass(frozen=True)
class LegRow:
    """A group's order with what the views and the exits need of it."""

    leg: GroupLeg
    side: Side
    order_type: OrderType


class GroupRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        # Kept with the session: every repository of one unit of work knows what it loaded.
        self._loaded_versions: dict[str, int] = session.info.setdefault("group_versions", {})

    def _remember(self, group: PositionGroup) -> PositionGroup:
        self._loaded_versions[group.group_id] = group.version
        return group

    async def get(self, group_id: str) -> PositionGroup | None:
        row = (
            await self._session.execute(
                select(position_groups).where(position_groups.c.group_id == group_id)
            )
        ).one_or_none()
        return None if row is None else self._remember(group_from(row))

    async def open_group_of(
        self, account: str, strategy: str, venue: str, symbol: str
    ) -> PositionGroup | None:
        key = "/".join((account, strategy, venue, symbol))
        row = (
            await self._session.execute(
                select(position_groups).where(position_groups.c.open_key == key)
            )
        ).one_or_none()
        return None if row is None else self._remember(group_from(row))

    async def waiting_of(self, account: str) -> list[PositionGroup]:
        rows = (
            await self._session.execute(
                select(position_groups)
                .where(
                    position_groups.c.account == account,
                    position_groups.c.status == GroupStatus.WAITING.value,
                )
                .order_by(position_groups.c.enqueued_at, position_groups.c.group_id)
            )
        ).all()
        return [self._remember(group_from(row)) for row in rows]

    async def slot_holders_of(self, account: str) -> list[PositionGroup]:
        rows = (
            await self._session.execute(
                select(position_groups).where(
                    position_groups.c.account == account,
                    position_groups.c.status.in_([status.value for status in SLOT_HOLDERS]),
                )
            )
        ).all()
        return [group_from(row) for row in rows]

    async def save(self, group: PositionGroup) -> None:
        loaded = self._loaded_versions.get(group.group_id)
        if loaded is None:
            try:
                await self._session.execute(
                    insert(position_groups).values(group_id=group.group_id, **_group_values(group))
                )
            except IntegrityError as exc:
                raise ConcurrentUpdate(
                    f"a group of {'/'.join(group.key)} was opened concurrently"
                ) from exc
        elif group.version != loaded:
            result = await self._session.execute(
                update(position_groups)
                .where(
                    position_groups.c.group_id == group.group_id,
                    position_groups.c.version == loaded,
                )
                .values(**_group_values(group))
            )
            if _changed_rows(result) != 1:
                raise ConcurrentUpdate(
                    f"group {group.group_id} changed since it was loaded at version {loaded}"
                )
        self._loaded_versions[group.group_id] = group.version

    async def add_order(
        self,
        group_id: str,
        order_id: str,
        role: GroupOrderRole,
        parent_order_id: str | None = None,
    ) -> None:
        await self._session.execute(
            insert(group_orders).values(
                order_id=order_id,
                group_id=group_id,
                role=role.value,
                parent_order_id=parent_order_id,
            )
        )

    async def group_order(self, order_id: str) -> GroupOrder | None:
        row = (
            await self._session.execute(
                select(group_orders).where(group_orders.c.order_id == order_id)
            )
        ).one_or_none()
        if row is None:
            return None
        return GroupOrder(row.group_id, GroupOrderRole(row.role), row.parent_order_id)

    async def legs_of(self, group_id: str) -> list[LegRow]:
        return await legs_of(self._session, group_id)


async def legs_of(session: AsyncSession, group_id: str) -> list[LegRow]:
    """The group's orders, oldest first."""
    query = (
        select(
            orders.c.order_id,
            orders.c.side,
            orders.c.order_type,
            orders.c.status,
            orders.c.quantity,
            orders.c.filled_quantity,
            orders.c.average_fill_price,
            orders.c.limit_price,
            orders.c.stop_price,
            group_orders.c.role,
            group_orders.c.parent_order_id,
        )
        .join(group_orders, group_orders.c.order_id == orders.c.order_id)
        .where(group_orders.c.group_id == group_id)
        .order_by(orders.c.created_at, orders.c.order_id)
    )
    return [
        LegRow(
            GroupLeg(
                order_id=row.order_id,
                role=GroupOrderRole(row.role),
                status=OrderStatus(row.status),
                quantity=row.quantity,
                filled_quantity=row.filled_quantity,
                average_fill_price=row.average_fill_price,
                limit_price=row.limit_price,
                stop_price=row.stop_price,
                parent_order_id=row.parent_order_id,
            ),
            Side(row.side),
            OrderType(row.order_type),
        )
        for row in (await session.execute(query)).all()
    ]


@dataclass(frozen=True)
class Pool:
    account: str
    last_closed_symbol: str | None
    version: int


class PoolRepository:
    """Each account's pool row: claimed by every change of who holds its slots."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def claim(self, account: str, *, closed_symbol: str | None = None, now: datetime) -> Pool:
        """Take the account's pool for this unit of work; a concurrent claim raises
        :class:`ConcurrentUpdate` on one of the two (the kit retries it on fresh state)."""
        row = (
            await self._session.execute(
                select(account_pools).where(account_pools.c.account == account)
            )
        ).one_or_none()
        if row is None:
            try:
                await self._session.execute(
                    insert(account_pools).values(
                        account=account,
                        last_closed_symbol=closed_symbol,
                        last_closed_at=now if closed_symbol else None,
                        version=1,
                    )
                )
            except IntegrityError as exc:
                raise ConcurrentUpdate(f"the pool of {account} was claimed concurrently") from exc
            return Pool(account, closed_symbol, 1)
        values: dict[str, Any] = {"version": row.version + 1}
        if closed_symbol is not None:
            values.update(last_closed_symbol=closed_symbol, last_closed_at=now)
        result = await self._session.execute(
            update(account_pools)
            .where(account_pools.c.account == account, account_pools.c.version == row.version)
            .values(**values)
        )
        if _changed_rows(result) != 1:
            raise ConcurrentUpdate(f"the pool of {account} was claimed concurrently")
        return Pool(account, closed_symbol or row.last_closed_symbol, row.version + 1)


async def last_closed_symbols(session: AsyncSession) -> dict[str, str]:
    rows = (await session.execute(select(account_pools))).all()
    return {row.account: row.last_closed_symbol for row in rows if row.last_closed_symbol}


class TradingStateRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def state_of(self, account: str) -> tuple[TradingState, str]:
        """The account's state and why; ACTIVE (risk's default) until risk announces another."""
        row = (
            await self._session.execute(
                select(trading_states).where(trading_states.c.account == account)
            )
        ).one_or_none()
        if row is None:
            return TradingState.ACTIVE, "no trading state announced by risk"
        return TradingState(row.state), row.reason

    async def record(
        self, account: str, state: TradingState, reason: str, actor: str, changed_at: datetime
    ) -> bool:
        """Keep the announcement unless a later one is already kept (they may arrive out of
        order); True when it was kept."""
        row = (
            await self._session.execute(
                select(trading_states.c.changed_at).where(trading_states.c.account == account)
            )
        ).one_or_none()
        values = {"state": state.value, "reason": reason, "actor": actor, "changed_at": changed_at}
        if row is None:
            try:
                await self._session.execute(
                    insert(trading_states).values(account=account, **values)
                )
            except IntegrityError as exc:
                raise ConcurrentUpdate(
                    f"the trading state of {account} changed concurrently"
                ) from exc
            return True
        if row.changed_at >= changed_at:
            return False
        result = await self._session.execute(
            update(trading_states)
            .where(
                trading_states.c.account == account, trading_states.c.changed_at == row.changed_at
            )
            .values(**values)
        )
        if _changed_rows(result) != 1:
            raise ConcurrentUpdate(f"the trading state of {account} changed concurrently")
        return True


async def find_groups(
    session: AsyncSession,
    *,
    account: str | None = None,
    status: GroupStatus | None = None,
    symbol: str | None = None,
    limit: int = 100,
) -> list[PositionGroup]:
    query = select(position_groups)
    if account is not None:
        query = query.where(position_groups.c.account == account)
    if status is not None:
        query = query.where(position_groups.c.status == status.value)
    if symbol is not None:
        query = query.where(position_groups.c.symbol == symbol)
    query = query.order_by(
        position_groups.c.created_at.desc(), position_groups.c.group_id.desc()
    ).limit(limit)
    return [group_from(row) for row in (await session.execute(query)).all()]


async def accounts_with_groups(session: AsyncSession) -> list[str]:
    query = (
        select(position_groups.c.account)
        .where(position_groups.c.status != GroupStatus.CLOSED.value)
        .group_by(position_groups.c.account)
    )
    return list((await session.scalars(query)).all())


async def count_by_status(session: AsyncSession, account: str) -> dict[GroupStatus, int]:
    query = (
        select(position_groups.c.status, func.count())
        .where(position_groups.c.account == account)
        .group_by(position_groups.c.status)
    )
    return {GroupStatus(status): n for status, n in (await session.execute(query)).all()}
